"""Decompression bombs: a few hundred bytes whose header claims a gigapixel, sent where the kiosk decodes images.

Every reader must look at the size an image declares before decoding it: the emotion service (face crops,
96×96 by contract), the kiosk page's picture store (PNG, JPEG, SVG for the browser) and the camera's photo
sources (at most 8000×8000). Each attack is sent as an attacker would, and each test keeps a positive
control: a good image right after the bomb still goes through.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import struct
import urllib.error
import urllib.request
import zlib

import cv2
import numpy as np
import pytest

from kiosk.camera import sources
from kiosk.emotion.classifier import decode_grey
from kiosk.emotion.service import EmotionService
from kiosk.events import ErrorEvent, FaceEvent, IllustrationEvent, Topics
from kiosk.illustrate import storybook
from kiosk.web.media import MediaStore
from kiosk.web.service import WebService
from tests.conftest import Recorder, start_bus, wait_for
from tests.servicekit import running
from tests.test_pipeline import sample_face_event

GIGA = (32000, 32000)


def jpeg_claiming(width: int, height: int, side: int = 96) -> bytes:
    """A real grey JPEG whose start-of-frame header is rewritten to claim ``width``×``height`` pixels."""
    jpeg = cv2.imencode(".jpg", np.full((side, side), 128, np.uint8))[1].tobytes()
    at = jpeg.index(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height (2), width (2)
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]


def png_claiming(width: int, height: int) -> bytes:
    """A real PNG whose IHDR is rewritten (checksum included) to claim ``width``×``height`` pixels."""
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    header = png[16:29]
    header = struct.pack(">II", width, height) + header[8:]
    return png[:16] + header + struct.pack(">I", zlib.crc32(b"IHDR" + header)) + png[33:]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_the_bombs_are_small_and_really_claim_a_gigapixel():
    from PIL import Image

    bomb = jpeg_claiming(*GIGA)
    assert len(bomb) < 1000
    for data in (bomb, png_claiming(*GIGA)):
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(data))


@pytest.mark.parametrize(
    "crop,reason",
    [
        (jpeg_claiming(*GIGA), "declares"),
        (jpeg_claiming(97, 96), "at most 96×96"),
        (jpeg_claiming(5000, 20), "at most 96×96"),
        (png_claiming(48, 48), "not a JPEG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not a readable image"),
        (b"GIF89a" + b"\x00" * 40, "not a"),
    ],
    ids=["32000x32000", "97x96", "5000x20", "png", "truncated", "gif"],
)
def test_a_face_crop_is_decoded_only_when_its_header_shows_a_small_jpeg(crop, reason):
    before = peak_rss_mib()
    with pytest.raises(ValueError, match=reason):
        decode_grey(crop)
    assert peak_rss_mib() - before < 100
    assert decode_grey(jpeg_claiming(96, 96)).shape == (96, 96)  # a crop as the camera makes it


@pytest.mark.integration
def test_the_emotion_service_refuses_a_decompression_bomb_and_goes_on(settings, connect):
    topics = Topics(settings.kiosk_id)
    seen = Recorder()
    monitor = connect("monitor")
    monitor.subscribe(topics.emotion, seen)
    monitor.subscribe(topics.error, seen)
    start_bus(monitor)
    real = sample_face_event("visit-real")
    bomb = real.model_copy(
        update={"session_id": "visit-bomb", "crop_jpeg_b64": base64.b64encode(jpeg_claiming(*GIGA)).decode()}
    )
    bomb = FaceEvent.model_validate(bomb.model_dump(exclude={"event_id"}))
    before = peak_rss_mib()
    with running(EmotionService(settings)) as emotion:
        assert emotion.bus.wait_subscribed(10)  # the face topic is read live (QoS 0): the reader must be there
        camera = start_bus(connect("camera"), settle=0)
        camera.publish(topics.face, bomb.to_json()).wait_for_publish(5)
        camera.publish(topics.face, real.to_json()).wait_for_publish(5)  # the control, right behind it
        assert wait_for(lambda: any(b"visit-real" in p for p in seen.payloads(topics.emotion)), timeout=20)
        assert wait_for(lambda: seen.payloads(topics.error))
    grown = peak_rss_mib() - before
    assert not any(b"visit-bomb" in p for p in seen.payloads(topics.emotion)), "the bomb was classified"
    [error] = [ErrorEvent.model_validate_json(p) for p in seen.payloads(topics.error)]
    assert error.service == "emotion" and "decompression bomb" in error.reason, error
    assert error.payload_excerpt == ""  # an error about `face` never quotes the crop
    assert grown < 200, f"peak memory grew by {grown:.0f} MiB"


def illustration(story_id: str, index: int, media_type: str, body: bytes) -> IllustrationEvent:
    return IllustrationEvent(
        session_id="visit-pictures", story_id=story_id, scene_index=index, scene_count=6, media_type=media_type,
        image_b64=base64.b64encode(body).decode(), illustrator="attacker", latency_ms=1,
    )  # fmt: skip


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8))
    + b']><svg xmlns="http://www.w3.org/2000/svg"><text>&i;</text></svg>'
)
HOSTILE_PICTURES = {
    "png-gigapixel": ("image/png", png_claiming(*GIGA)),
    "png-5000px": ("image/png", png_claiming(5000, 10)),
    "jpeg-gigapixel": ("image/jpeg", jpeg_claiming(*GIGA)),
    "png-said-jpeg": ("image/jpeg", png_claiming(8, 8)),
    "svg-billion-laughs": ("image/svg+xml", BILLION_LAUGHS),
    "svg-script": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    "svg-onload": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    "svg-broken": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><g aria-label="a "><script>"/></svg>'),
    "html": ("image/svg+xml", b"<html><body onload=alert(1)></body></html>"),
}


@pytest.mark.parametrize("name", HOSTILE_PICTURES)
def test_the_picture_store_refuses_what_a_browser_must_not_decode(tmp_path, name):
    media_type, body = HOSTILE_PICTURES[name]
    store = MediaStore(tmp_path)
    with pytest.raises(ValueError):
        store.put("ab" * 16, media_type, body)
    assert len(store) == 0
    store.put("cd" * 16, "image/svg+xml", storybook.render_svg("meadow", ["sun"], "happy", "red", True).encode())
    assert len(store) == 1


@pytest.mark.integration
def test_the_kiosk_page_never_serves_a_bomb_it_was_sent(settings, connect):
    topics = Topics(settings.kiosk_id)
    errors = Recorder()
    start_bus(connect("monitor")).subscribe(topics.error, errors)
    story_id = "5" * 32
    attacks = [
        illustration(story_id, index % 6, *HOSTILE_PICTURES[name]) for index, name in enumerate(HOSTILE_PICTURES)
    ]
    control = illustration(
        story_id, 0, "image/svg+xml", storybook.render_svg("meadow", [], "happy", None, False).encode()
    )
    base = f"http://127.0.0.1:{settings.web.port}"

    def status_of(event: IllustrationEvent) -> int:
        suffix = {"image/svg+xml": ".svg", "image/png": ".png", "image/jpeg": ".jpg"}[event.media_type]
        try:
            with urllib.request.urlopen(f"{base}/media/{event.event_id}{suffix}", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    with running(WebService(settings)) as web:
        assert web.bus.wait_subscribed(10)
        painter = start_bus(connect("illustrate"), settle=0)
        for event in [*attacks, control]:
            painter.publish(topics.illustration, event.to_json()).wait_for_publish(5)
        assert wait_for(lambda: status_of(control) == 200, timeout=15)
        assert wait_for(lambda: len(errors.payloads()) == len(attacks))
        assert all(status_of(event) == 404 for event in attacks)
        with urllib.request.urlopen(f"{base}/events", timeout=5) as stream:  # what a freshly opened page gets
            lines = iter(stream.readline, b"")
            state = json.loads(next(line for line in lines if line.startswith(b"data: "))[6:])
    assert [p["url"] for p in state["pictures"]] == [f"/media/{control.event_id}.svg"]
    refused = [ErrorEvent.model_validate_json(p) for p in errors.payloads()]
    assert all(e.service == "web" and e.topic == topics.illustration for e in refused)


@pytest.mark.parametrize("suffix,make", [(".jpg", jpeg_claiming), (".png", png_claiming)])
def test_a_photo_source_that_declares_a_gigapixel_is_refused_with_a_clear_error(tmp_path, suffix, make):
    bomb = tmp_path / f"bomb{suffix}"
    bomb.write_bytes(make(*GIGA))
    with pytest.raises(sources.SourceError, match="8000×8000"):
        next(sources.frames(sources.resolve(str(bomb)), paced=False))
    wide = tmp_path / f"wide{suffix}"
    wide.write_bytes(make(9000, 20))
    with pytest.raises(sources.SourceError, match="9000×20 pixels; the largest photo is 8000×8000"):
        next(sources.frames(sources.resolve(str(wide)), paced=False))
    folder = tmp_path / "folder"
    folder.mkdir()
    bomb.rename(folder / f"a{suffix}")
    with pytest.raises(sources.SourceError, match="8000×8000"):
        next(sources.frames(sources.resolve(str(folder)), paced=False))
    good = tmp_path / f"good{suffix}"
    good.write_bytes(cv2.imencode(suffix, np.zeros((96, 96, 3), np.uint8))[1].tobytes())
    assert next(sources.frames(sources.resolve(str(good)), paced=False)).shape[:2] == (96, 96)


def test_a_video_source_that_declares_oversized_frames_is_refused_before_reading(tmp_path):
    """An MJPEG AVI whose headers (and every frame's) claim 9000×9000 pixels: refused when opened."""
    small = tmp_path / "small.avi"
    writer = cv2.VideoWriter(str(small), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 96))
    for _ in range(5):
        writer.write(np.full((96, 96, 3), 100, np.uint8))
    writer.release()
    video = bytearray(small.read_bytes())
    struct.pack_into("<II", video, video.find(b"avih") + 8 + 32, 9000, 9000)  # main header: width, height
    struct.pack_into("<ii", video, video.find(b"strf") + 8 + 4, 9000, 9000)  # stream format: biWidth, biHeight
    at = 0
    while (at := video.find(b"\xff\xc0", at)) >= 0:  # each frame's JPEG start-of-frame
        struct.pack_into(">HH", video, at + 5, 9000, 9000)
        at += 9
    bomb = tmp_path / "bomb.avi"
    bomb.write_bytes(bytes(video))
    with pytest.raises(sources.SourceError, match="9000×9000 frames; the largest is 8000"):
        next(sources.frames(sources.resolve(str(bomb))))
    assert next(sources.frames(sources.resolve(str(small)))).shape[:2] == (96, 96)  # the control
