"""The service chain on a real broker: a face event becomes an emotion, a story and its pictures."""

import json

import cv2
import pytest

from kiosk.camera import sources
from kiosk.camera.detector import HaarFaceDetector, encode_crop, face_crop
from kiosk.camera.service import CameraService
from kiosk.emotion.service import EmotionService
from kiosk.events import BoundingBox, FaceEvent, Topics, parse_event
from kiosk.illustrate.service import IllustrateService
from kiosk.story.service import StoryService
from tests.conftest import Recorder, start_bus, wait_for
from tests.modelkit import tiny_model_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def chain(settings, tmp_path):
    """Emotion (a tiny model), story and illustrate services running in this process."""
    settings = settings.model_copy(
        update={
            "emotion": settings.emotion.model_copy(
                update={"model_dir": tiny_model_dir(tmp_path / "model"), "unsure_below": 0.0}
            )
        }
    )
    services = [EmotionService(settings), StoryService(settings), IllustrateService(settings)]
    for service in services:
        service.start()
        assert service.bus.wait_connected(10)
    yield settings, services
    for service in services:
        service.stop()


def sample_face_event(session_id="visit-1") -> FaceEvent:
    grey = cv2.cvtColor(sources.sample_photo(), cv2.COLOR_BGR2GRAY)
    face = HaarFaceDetector().detect(grey)[0]
    return FaceEvent(
        session_id=session_id,
        crop_jpeg_b64=encode_crop(face_crop(grey, face)),
        box=BoundingBox(x=face.x, y=face.y, w=face.w, h=face.h),
        frame_width=512,
        frame_height=512,
        quality=face.quality,
    )


def watch(connect, settings):
    recorder = Recorder()
    monitor = connect("monitor")
    monitor.subscribe(f"kiosk/{settings.kiosk_id}/#", recorder)
    start_bus(monitor)
    return recorder


def test_a_face_becomes_emotion_story_and_one_picture_per_scene(chain, connect):
    settings, _ = chain
    topics = Topics(settings.kiosk_id)
    seen = watch(connect, settings)
    face = sample_face_event()
    start_bus(connect("camera"), settle=0).publish(topics.face, face.to_json())

    assert wait_for(lambda: len(seen.payloads(topics.illustration)) == 3, timeout=20), seen.topics()
    emotion = parse_event("emotion", seen.payloads(topics.emotion)[0])
    story = parse_event("story", seen.payloads(topics.story)[0])
    pictures = [parse_event("illustration", p) for p in seen.payloads(topics.illustration)]
    assert emotion.causation_id == face.event_id and emotion.session_id == "visit-1"
    assert emotion.runtime == "onnxruntime-cpu" and emotion.model == "tiny-test@0.0.1"
    assert story.causation_id == emotion.event_id and story.emotion == emotion.emotion
    assert sorted(p.scene_index for p in pictures) == [0, 1, 2]
    assert all(p.story_id == story.event_id and p.media_type == "image/svg+xml" for p in pictures)
    partials = [parse_event("story_partial", p) for p in seen.payloads(topics.story_partial)]
    assert partials and partials[-1].text.startswith(story.title)
    order = [t for t in seen.topics() if t in (topics.emotion, topics.story, topics.illustration)]
    assert order.index(topics.emotion) < order.index(topics.story) < order.index(topics.illustration)
    assert topics.face not in seen.topics()  # the monitor never sees the crop


def test_a_malformed_payload_goes_to_error_and_the_service_keeps_running(chain, connect):
    settings, (emotion_service, *_) = chain
    topics = Topics(settings.kiosk_id)
    seen = watch(connect, settings)
    camera = start_bus(connect("camera"), settle=0)
    camera.publish(topics.face, b"{not json")
    camera.publish(
        topics.face,
        json.dumps(
            {
                "session_id": "x",
                "crop_jpeg_b64": "!!!!" * 8,
                "box": {"x": 0, "y": 0, "w": 1, "h": 1},
                "frame_width": 1,
                "frame_height": 1,
                "quality": 0,
            }
        ).encode(),
    )
    assert wait_for(lambda: len(seen.payloads(topics.error)) == 2, timeout=10)
    reasons = [json.loads(p)["reason"] for p in seen.payloads(topics.error)]
    assert "invalid face event" in reasons[0]
    assert "base64" in reasons[1]
    assert all(json.loads(p)["payload_excerpt"] == "" for p in seen.payloads(topics.error))  # never face bytes
    camera.publish(topics.face, sample_face_event("after-errors").to_json())
    assert wait_for(lambda: len(seen.payloads(topics.illustration)) == 3, timeout=20)
    assert emotion_service.errors == 2 and emotion_service.handled == 1


def test_a_redelivered_event_is_handled_once(chain, connect):
    settings, (emotion_service, *_) = chain
    topics = Topics(settings.kiosk_id)
    seen = watch(connect, settings)
    camera = start_bus(connect("camera"), settle=0)
    face = sample_face_event()
    camera.publish(topics.face, face.to_json())
    camera.publish(topics.face, face.to_json())  # the same event_id again (QoS 1 may redeliver)
    marker = sample_face_event("marker")  # handled after both, in order: its answer closes the count
    camera.publish(topics.face, marker.to_json())
    assert wait_for(lambda: any(b'"marker"' in p for p in seen.payloads(topics.emotion)), timeout=20)
    causes = [parse_event("emotion", p).causation_id for p in seen.payloads(topics.emotion)]
    assert causes == [face.event_id, marker.event_id]
    assert wait_for(lambda: emotion_service.handled == 2)  # counted once its answer is out


def test_a_face_published_while_the_broker_restarts_still_becomes_a_story(chain, connect, mosquitto):
    settings, _ = chain
    topics = Topics(settings.kiosk_id)
    seen = Recorder()
    monitor = connect("monitor", persistent=True)
    monitor.subscribe(f"kiosk/{settings.kiosk_id}/#", seen)
    start_bus(monitor)
    camera = CameraService(settings)  # its publish path: a face nobody reads yet is sent again
    camera.bus.start()
    try:
        assert camera.bus.wait_connected(10)
        mosquitto.stop()
        assert wait_for(lambda: not camera.bus.connected.is_set())
        face = sample_face_event("during-restart")
        camera.publish(face)  # waits in the outbox
        assert camera.bus.outbox_size == 1
        mosquitto.start()
        assert wait_for(lambda: len(seen.payloads(topics.illustration)) == 3, timeout=40), seen.topics()
        assert parse_event("emotion", seen.payloads(topics.emotion)[0]).causation_id == face.event_id
    finally:
        camera.bus.stop()
