"""`kiosk run --source PATH --once`, exactly as an installer runs it."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from kiosk.camera import sources

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_once(source, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "run", "--source", str(source), "--once"],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def test_one_photo_prints_the_whole_pipeline_in_order(tmp_path):
    photo = tmp_path / "child.jpg"
    cv2.imwrite(str(photo), sources.sample_photo())
    result = run_once(photo)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    topics = [line["topic"] for line in lines]
    assert topics[:3] == ["presence", "face", "emotion"]
    assert topics[-4:] == ["story", "illustration", "illustration", "illustration"]
    assert set(topics[3:-4]) == {"story/partial"}
    session = {line["session_id"] for line in lines}
    assert len(session) == 1
    assert lines[1]["crop_jpeg_b64"].startswith("<redacted")  # no face bytes in the output
    assert all(len(json.dumps(line)) < 4000 for line in lines)
    emotion = lines[2]
    assert emotion["runtime"] == "onnxruntime-cpu" and emotion["causation_id"] == lines[1]["event_id"]


def test_a_video_works_too(tmp_path):
    video = tmp_path / "visit.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (512, 512))
    blank = np.full((512, 512, 3), 200, np.uint8)
    for frame in [blank] * 10 + [sources.sample_photo()] * 20:
        writer.write(frame)
    writer.release()
    result = run_once(video)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["topic"] == "illustration"


def test_no_face_is_a_clear_failure(tmp_path):
    empty = tmp_path / "wall.png"
    cv2.imwrite(str(empty), np.full((480, 640, 3), 180, np.uint8))
    result = run_once(empty)
    assert result.returncode == 2
    assert "no steady face found" in result.stderr
    assert result.stdout == ""


def test_a_missing_source_is_a_clear_failure(tmp_path):
    result = run_once(tmp_path / "nothing.jpg")
    assert result.returncode == 2 and "does not exist" in result.stderr
