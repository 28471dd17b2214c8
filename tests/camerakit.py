"""Test scenes built from the photo that scikit-image ships: a child in front of the kiosk, or nobody."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kiosk.camera import sources

BACKGROUND = (205, 215, 220)


def scene(shirt_bgr: tuple[int, int, int] | None = None, glasses: bool = False, size=(640, 480), offset=(0, 0)):
    """A 640×480 frame with the sample face (about 160 px wide) and optionally a coloured shirt below it."""
    frame = np.full((size[1], size[0], 3), BACKGROUND, np.uint8)
    head = cv2.resize(sources.sample_photo()[40:200, 150:300], (240, 256))  # the photo's head, 1.6×
    x, y = 200 + offset[0], 10 + offset[1]
    frame[y : y + 256, x : x + 240] = head
    if shirt_bgr is not None:
        frame[y + 256 :, max(0, x - 60) : x + 300] = shirt_bgr
    if glasses:  # round frames where the photo's eyes are (from its 5-point landmarks, scaled 1.6×)
        left, right = (x + 86, y + 99), (x + 154, y + 102)
        for centre in (left, right):
            cv2.circle(frame, centre, 24, (25, 25, 25), 4)
        cv2.line(frame, (left[0] + 24, left[1]), (right[0] - 24, right[1]), (25, 25, 25), 4)
    return frame


def write_video(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def empty(size=(640, 480)) -> np.ndarray:
    return np.full((size[1], size[0], 3), BACKGROUND, np.uint8)
