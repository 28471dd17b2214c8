"""The camera service on built scenes: visits, sessions, attributes, a dead camera."""

import threading

import cv2
import pytest

from kiosk.camera.attribute_backends import age_group
from kiosk.camera.attributes import OfflineAttributeEstimator, colour_name
from kiosk.camera.detector import DlibHogDetector, HaarFaceDetector, make_detector
from kiosk.camera.service import CameraService
from kiosk.config import CameraConfig, Settings
from kiosk.events import StatusPayload, Topics
from tests.camerakit import empty, scene, write_video
from tests.conftest import Recorder, start_bus, wait_for


def detect(frame, detector=None):
    return (detector or DlibHogDetector()).detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))


def test_two_visits_in_a_video_are_two_sessions(tmp_path):
    # 15 fps: a visit of 2 s, 16 s of nobody (3 s to leave + 10 s cooldown + margin), a second visit of 2 s
    frames = [empty()] * 10 + [scene((40, 180, 60))] * 30 + [empty()] * 240 + [scene((200, 80, 30))] * 30
    frames += [empty()] * 60
    video = write_video(tmp_path / "two-visits.avi", frames)
    events = []
    settings = Settings(camera=CameraConfig(source=str(video)))
    camera = CameraService(settings, once=True, stop_after_face=False, on_event=events.append)
    camera.setup()
    camera.loop()  # plays the file through once (the bus is never started: events are only collected)
    kinds = [(e.kind, getattr(e, "state", None)) for e in events]
    assert kinds == [("presence", "arrived"), ("face", None), ("presence", "left")] * 2
    sessions = [e.session_id for e in events]
    assert len(set(sessions[:3])) == 1 and len(set(sessions[3:])) == 1 and sessions[0] != sessions[3]
    assert events[1].attributes.clothing_colour == "green" and events[4].attributes.clothing_colour == "blue"


def test_a_visit_shorter_than_the_steady_wait_is_ignored(tmp_path):
    video = write_video(tmp_path / "passer-by.avi", [empty()] * 5 + [scene()] * 3 + [empty()] * 20)
    events = []
    camera = CameraService(
        Settings(camera=CameraConfig(source=str(video))), once=True, stop_after_face=False, on_event=events.append
    )
    camera.setup()
    camera.loop()
    assert events == []


def test_attributes_follow_the_scene():
    estimator = OfflineAttributeEstimator()
    plain = scene((40, 180, 60))
    found = estimator.estimate(plain, detect(plain)[0])
    assert found.attributes.clothing_colour == "green"
    assert found.attributes.glasses is False
    assert found.attributes.age_group == "young adult"  # the photo shows an adult
    spectacled = scene((200, 80, 30), glasses=True)
    found = estimator.estimate(spectacled, detect(spectacled)[0])
    assert found.attributes.glasses is True and found.attributes.clothing_colour == "blue"
    assert set(found.confidences) == {"clothing_colour", "age_group", "gender", "glasses"}


def test_no_body_in_view_leaves_the_colour_out():
    frame = scene()[:300]  # cropped just under the chin: no shirt in the picture
    face = detect(frame)[0]
    assert OfflineAttributeEstimator().estimate(frame, face).attributes.clothing_colour is None


@pytest.mark.parametrize(
    "age,group", [(4, "young child"), (12.9, "young child"), (15, "teenager"), (25, "young adult")]
)
def test_age_groups(age, group):
    assert age_group(age) == group


def test_colour_names():
    import numpy as np

    def named(bgr):
        pixels = cv2.cvtColor(np.full((4, 4, 3), bgr, np.uint8), cv2.COLOR_BGR2HSV).reshape(-1, 3)
        return colour_name(pixels)[0]

    assert [
        named(c)
        for c in (
            (30, 30, 220),
            (30, 200, 30),
            (220, 60, 30),
            (20, 20, 20),
            (240, 240, 240),
            (0, 215, 255),
            (180, 60, 140),
        )
    ] == ["red", "green", "blue", "black", "white", "yellow", "purple"]


def test_glasses_defeat_the_cascade_but_not_the_hog_fallback():
    """Why dlib's HOG detector is the fallback rather than the cascade (bench/camera.py measures the sweep)."""
    spectacled = scene(glasses=True)
    assert detect(spectacled, DlibHogDetector()) and not detect(spectacled, HaarFaceDetector())
    assert make_detector("dlib-hog", 48).name == "dlib-hog"


@pytest.mark.integration
def test_a_dead_camera_is_reported_and_retried(settings, connect):
    from kiosk import broker

    dead = f"http://127.0.0.1:{broker.free_port()}/stream.mjpg"  # nothing listens there
    settings = settings.model_copy(update={"camera": settings.camera.model_copy(update={"source": dead})})
    statuses = Recorder()
    watcher = connect("monitor")
    watcher.subscribe(Topics(settings.kiosk_id).status("camera"), statuses)
    start_bus(watcher)
    camera = CameraService(settings)
    camera.start()
    thread = threading.Thread(target=camera.loop, daemon=True)
    thread.start()
    try:

        def problem():
            states = [StatusPayload.model_validate_json(p) for p in statuses.payloads()]
            return any(s.state == "online" and "cannot open" in str(s.detail.get("problem")) for s in states)

        assert wait_for(problem, timeout=15)
        assert thread.is_alive()  # still trying, not crashed
    finally:
        camera.stop_event.set()
        thread.join(10)
        camera.stop()
