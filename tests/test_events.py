import json
import time

import pytest

from kiosk.events import (
    SCHEMA_VERSION,
    Attributes,
    BoundingBox,
    EmotionEvent,
    FaceEvent,
    HeroLook,
    IllustrationEvent,
    PresenceEvent,
    Scene,
    ServiceMetrics,
    StatusPayload,
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


def test_a_payload_over_its_topics_byte_limit_is_refused_unread():
    huge = PresenceEvent(session_id="s", state="left").to_json()[:-1] + b', "pad": "' + b"x" * 5000 + b'"}'
    with pytest.raises(ValueError, match="over the 2048-byte limit"):
        parse_event("presence", huge)


@pytest.mark.parametrize("ts", ["1e20", "-1", "NaN", "Infinity", "1e400", str(int(time.time()) + 86400)])
def test_timestamps_must_be_a_real_time(ts):
    data = json.loads(PresenceEvent(session_id="s", state="left").to_json())
    raw = json.dumps(data).replace(f'"ts": {data["ts"]}', f'"ts": {ts}').encode()
    assert ts.encode() in raw
    with pytest.raises(ValueError, match=r"ts: (Input should be|Value error, timestamp lies in the future)"):
        parse_event("presence", raw)


def test_refusals_are_short_and_never_quote_the_refused_value():
    with pytest.raises(ValueError) as caught:
        parse_event("presence", json.dumps({"session_id": "<script>" + "y" * 50_000, "state": "x" * 1000}).encode())
    assert len(str(caught.value)) <= 450 and "<script>" not in str(caught.value) and "yyy" not in str(caught.value)


@pytest.mark.parametrize("service", ["<script>x</script>", "x" * 999_600, "narrator", ""])
def test_a_status_or_metrics_payload_names_one_of_the_kiosks_services(service):
    with pytest.raises(ValueError):
        StatusPayload(state="online", service=service)
    with pytest.raises(ValueError):
        ServiceMetrics(
            service=service, uptime_s=1, rss_mib=1, cpu_percent=0, queue_depth=0, outbox=0, handled=0, errors=0
        )


def test_status_detail_is_bounded_whatever_a_service_puts_in_it():
    long = StatusPayload(state="online", service="camera", detail={"problem": "e" * 100_000})
    assert len(long.detail["problem"]) == 300  # a long exception text is cut, not refused
    with pytest.raises(ValueError):
        StatusPayload(state="online", service="camera", detail={f"k{i}": i for i in range(1000)})


@pytest.mark.parametrize(
    "field,value",
    [
        ("setting", '"><script>alert(1)</script>'),
        ("setting", "x" * 100),
        ("objects", ["<g onload=x>"]),
        ("objects", ["sun"] * 7),
    ],
)
def test_scene_words_are_plain_words(field, value):
    scene = {"text": "t", "illustration_prompt": "p", "setting": "meadow", "objects": ["sun"], "mood": "sad"}
    with pytest.raises(ValueError):
        Scene(**(scene | {field: value}))


def test_colours_come_from_the_fixed_set():
    assert Attributes(clothing_colour="green").clothing_colour == "green"
    for colour in ('red" onload="x', "turquoise", "#ff0000"):
        with pytest.raises(ValueError):
            Attributes(clothing_colour=colour)
        with pytest.raises(ValueError):
            HeroLook(description="a child", clothing_colour=colour)


def test_an_illustration_index_lies_within_its_story():
    picture = {
        "session_id": "s", "story_id": "a" * 32, "media_type": "image/png", "image_b64": "A" * 16,
        "illustrator": "storybook", "latency_ms": 1,
    }  # fmt: skip
    IllustrationEvent(**picture, scene_index=2, scene_count=3)
    for index, count in ((3, 3), (10**9, 10**9 + 1), (-1, 3)):
        with pytest.raises(ValueError):
            IllustrationEvent(**picture, scene_index=index, scene_count=count)
