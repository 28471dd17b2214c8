import json

import pytest

from kiosk.events import (
    SCHEMA_VERSION,
    BoundingBox,
    EmotionEvent,
    FaceEvent,
    PresenceEvent,
    Topics,
    parse_event,
)


def test_topic_map_under_kiosk_id():
    topics = Topics("playroom-2")
    assert topics.presence == "kiosk/playroom-2/presence"
    assert topics.story_partial == "kiosk/playroom-2/story/partial"
    assert topics.status("emotion") == "kiosk/playroom-2/status/emotion"
    assert topics.command("reload-models") == "kiosk/playroom-2/cmd/reload-models/set"
    assert topics.relative("kiosk/playroom-2/story/partial") == "story/partial"


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#"])
def test_kiosk_id_cannot_break_topics(bad):
    with pytest.raises(ValueError):
        Topics(bad)


def test_event_round_trip_carries_envelope():
    event = PresenceEvent(session_id="s1", state="arrived")
    data = json.loads(event.to_json())
    assert data["schema"] == SCHEMA_VERSION
    assert {"event_id", "session_id", "ts", "causation_id"} <= set(data)
    assert parse_event("presence", event.to_json()) == event


def test_parse_rejects_with_reason():
    with pytest.raises(ValueError, match="state"):
        parse_event("presence", b'{"session_id": "s", "state": "dancing"}')
    with pytest.raises(ValueError, match="invalid presence event"):
        parse_event("presence", b"not json")
    with pytest.raises(ValueError, match="photo: Extra inputs"):
        parse_event("presence", b'{"session_id": "s", "state": "left", "photo": "x"}')


def test_emotion_must_be_a_fer_class():
    with pytest.raises(ValueError):
        EmotionEvent(
            session_id="s",
            emotion="bored",
            detected="happy",
            confidence=0.5,
            probabilities={},
            runtime="r",
            model="m",
            latency_ms=1,
        )


def test_face_redaction_removes_the_crop():
    face = FaceEvent(
        session_id="s",
        crop_jpeg_b64="A" * 400,
        box=BoundingBox(x=0, y=0, w=10, h=10),
        frame_width=640,
        frame_height=480,
        quality=1.0,
    )
    redacted = json.dumps(face.redacted())
    assert "A" * 40 not in redacted
    assert "redacted: 400" in redacted
