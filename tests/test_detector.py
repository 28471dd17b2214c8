import base64

import cv2
import numpy as np

from kiosk.camera import sources
from kiosk.camera.detector import CROP_SIDE, HaarFaceDetector, encode_crop, face_crop


def grey(image):
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def test_finds_the_face_in_the_shipped_photo():
    photo = grey(sources.sample_photo())
    faces = HaarFaceDetector().detect(photo)
    assert len(faces) >= 1
    face = faces[0]
    # the astronaut's face lies in the upper middle of the 512×512 photo
    assert 120 < face.x + face.w / 2 < 300 and 60 < face.y + face.h / 2 < 220
    assert face.quality > 0


def test_no_face_in_a_blank_frame_or_in_noise():
    detector = HaarFaceDetector()
    assert detector.detect(np.full((480, 640), 128, np.uint8)) == []
    assert detector.detect(np.random.default_rng(0).integers(0, 255, (480, 640), dtype=np.uint8)) == []


def test_crop_is_small_grey_and_encodes_as_jpeg():
    photo = grey(sources.sample_photo())
    face = HaarFaceDetector().detect(photo)[0]
    crop = face_crop(photo, face)
    assert crop.shape == (CROP_SIDE, CROP_SIDE) and crop.dtype == np.uint8
    jpeg = base64.b64decode(encode_crop(crop))
    assert jpeg[:2] == b"\xff\xd8"
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED).ndim == 2


def test_resolving_sources(tmp_path):
    assert sources.resolve("0").kind == "camera"
    assert sources.resolve("rtsp://127.0.0.1/cam").kind == "stream"
    assert sources.resolve(str(tmp_path)).kind == "folder"
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), sources.sample_photo())
    assert sources.resolve(str(image)).kind == "image"
    try:
        sources.resolve(str(tmp_path / "missing.jpg"))
    except sources.SourceError as exc:
        assert "does not exist" in str(exc)
    else:
        raise AssertionError("a missing file must be refused")


def test_folder_and_video_sources_play_once(tmp_path):
    photo = sources.sample_photo()
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), photo)
    frames = list(sources.frames(sources.resolve(str(tmp_path)), fps=10, once=True, still_seconds=0.5, paced=False))
    assert len(frames) == 10
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for _ in range(7):
        writer.write(photo)
    writer.release()
    assert len(list(sources.frames(sources.resolve(str(video)), once=True))) == 7


def test_yunet_finds_the_shipped_photo_with_its_landmarks():
    from kiosk.camera.detector import YuNetDetector

    photo = sources.sample_photo()
    faces = YuNetDetector().detect(grey(photo))
    assert len(faces) == 1
    face = faces[0]
    assert 120 < face.x + face.w / 2 < 300 and 60 < face.y + face.h / 2 < 220
    left_eye, right_eye = face.landmarks[:2]
    assert left_eye[0] < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 10  # the astronaut looks straight on
    assert face.x <= left_eye[0] <= face.x + face.w and 0.5 < face.score <= 1.0
