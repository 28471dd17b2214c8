"""Frame sources: a camera index, a video file or stream URL, one image, or a folder of images.

Frames live in memory only. An image or folder is replayed as a steady video at a set frame rate, so a
kiosk can be demonstrated and tested without a camera.

A photo or video declares its size in its header, and a file of a few hundred bytes can declare a
gigapixel: the declared size is read first (without decoding) and anything over ``MAX_SIDE`` is refused
with a clear error before a pixel is decoded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}
MAX_SIDE = 8000  # larger than any camera or phone photo; a bigger frame is refused, never decoded


class SourceError(RuntimeError):
    """A source that cannot be opened or read."""


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # camera | video | image | folder | stream | sample
    target: str

    def describe(self) -> str:
        return f"{self.kind} {self.target}"


def sample_photo() -> np.ndarray:
    """A real face photo that an installed package ships (scikit-image's astronaut, public domain)."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def camera_present(index: int = 0) -> bool:
    return Path(f"/dev/video{index}").exists()


def resolve(source: str | None) -> SourceSpec:
    """Decide what ``source`` names; with none, the first camera or else the sample photo."""
    if source is None or source == "":
        if camera_present(0):
            return SourceSpec("camera", "0")
        return SourceSpec("sample", "scikit-image astronaut photo")
    if source == "sample":
        return SourceSpec("sample", "scikit-image astronaut photo")
    if source.isdigit():
        return SourceSpec("camera", source)
    if "://" in source:
        return SourceSpec("stream", source)
    path = Path(source)
    if path.is_dir():
        return SourceSpec("folder", source)
    if not path.exists():
        raise SourceError(f"source {source!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return SourceSpec("image", source)
    if suffix in VIDEO_SUFFIXES:
        return SourceSpec("video", source)
    raise SourceError(
        f"source {source!r} is neither an image ({sorted(IMAGE_SUFFIXES)}) nor a video ({sorted(VIDEO_SUFFIXES)})"
    )


def video_fps(path: str) -> float:
    """The frame rate a video file declares (25 when it declares none)."""
    capture = cv2.VideoCapture(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return fps if fps and fps > 0 else 25.0


def _too_large(width: float, height: float) -> bool:
    return width > MAX_SIDE or height > MAX_SIDE


def check_declared_size(path: Path) -> tuple[int, int]:
    """The photo's width and height from its header (PIL reads it lazily, without decoding the pixels)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise SourceError(f"{path} declares a gigapixel image; the largest photo is {MAX_SIDE}×{MAX_SIDE}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError):  # ultralytics patches open()
        raise SourceError(f"{path} is not a readable image") from None
    if _too_large(width, height):
        raise SourceError(f"{path} is {width}×{height} pixels; the largest photo is {MAX_SIDE}×{MAX_SIDE}")
    return width, height


def _read_image(path: Path) -> np.ndarray:
    check_declared_size(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{path} is not a readable image")
    return image


def _still(image: np.ndarray, seconds: float | None, fps: float, paced: bool) -> Iterator[np.ndarray]:
    frames = None if seconds is None else max(1, int(seconds * fps))
    count = 0
    while frames is None or count < frames:
        yield image
        count += 1
        if paced:
            time.sleep(1 / fps)


def _capture(target: str | int, loop: bool) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        raise SourceError(f"cannot open video source {target!r}")
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if _too_large(width, height):
        capture.release()
        raise SourceError(
            f"video source {target!r} declares {width:.0f}×{height:.0f} frames; the largest is {MAX_SIDE}"
        )
    try:
        while True:
            ok, frame = capture.read()
            if ok:
                yield frame
                continue
            if not loop:
                return
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
            if not ok:
                raise SourceError(f"video source {target!r} stopped giving frames")
            yield frame
    finally:
        capture.release()


def frames(
    spec: SourceSpec, fps: float = 15.0, once: bool = False, still_seconds: float = 4.0, paced: bool = True
) -> Iterator[np.ndarray]:
    """BGR frames from ``spec``. ``once`` plays a video or folder through once and a still for a while;
    otherwise videos loop and stills repeat until stopped. ``paced`` sleeps between still frames."""
    if spec.kind == "sample":
        yield from _still(sample_photo(), still_seconds if once else None, fps, paced)
    elif spec.kind == "image":
        yield from _still(_read_image(Path(spec.target)), still_seconds if once else None, fps, paced)
    elif spec.kind == "folder":
        images = sorted(p for p in Path(spec.target).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise SourceError(f"folder {spec.target} holds no images")
        while True:
            for path in images:
                yield from _still(_read_image(path), still_seconds, fps, paced)
            if once:
                return
    elif spec.kind == "video":
        yield from _capture(spec.target, loop=not once)
    elif spec.kind in ("camera", "stream"):
        target: str | int = int(spec.target) if spec.kind == "camera" else spec.target
        yield from _capture(target, loop=False)
    else:
        raise SourceError(f"unknown source kind {spec.kind!r}")
