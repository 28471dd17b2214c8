"""The broker ACL: the face crop reaches the emotion service and nobody else; only the camera sends it.

No check here passes on silence: a reader that must not see the face waits for a marker it may see, sent
after the face was acknowledged (the broker delivers to one client in order); a refused write or login is
the broker's own answer (PUBACK or CONNACK "Not authorized"), beside an allowed one in the same test.
"""

import pytest

from kiosk.events import Topics
from tests.conftest import RawClient

pytestmark = pytest.mark.integration

PROBE = b'{"probe": true}'
MARKER = b'{"marker": true}'
# For each reader: a topic it may read and the account that may write it, to send the marker on.
MARKER_FOR = {
    "emotion": ("emotion", "status/emotion"),
    "story": ("emotion", "emotion"),
    "illustrate": ("story", "story"),
    "web": ("camera", "presence"),
    "dashboard": ("camera", "presence"),
    "monitor": ("camera", "presence"),
    "supervisor": ("emotion", "status/emotion"),
    "staff": ("camera", "presence"),
    "homeassistant": ("camera", "presence"),
    "deploy": ("deploy", "models/deploy"),
}


@pytest.mark.parametrize("reader", list(MARKER_FOR))
def test_only_the_emotion_service_can_read_faces(settings, raw, reader):
    base = Topics(settings.kiosk_id).base
    clients: dict[str, RawClient] = {}

    def client(account: str) -> RawClient:
        if account not in clients:
            clients[account] = raw(account)
            assert clients[account].connect() == "Success"
        return clients[account]

    client(reader).subscribe(f"{base}/#")
    assert client("camera").publish(f"{base}/face", PROBE) in ("Success", "No matching subscribers")
    writer, topic = MARKER_FOR[reader]
    assert client(writer).publish(f"{base}/{topic}", MARKER) == "Success"
    assert client(reader).wait_message(lambda m: m[1] == MARKER)
    assert (f"{base}/face" in [t for t, _, _ in client(reader).received()]) is (reader == "emotion")


def test_only_the_camera_may_publish_faces(settings, raw):
    face = f"{Topics(settings.kiosk_id).base}/face"
    emotion = raw("emotion")
    assert emotion.connect() == "Success"
    emotion.subscribe(face)
    for impostor in ("staff", "story", "web", "dashboard", "monitor"):
        client = raw(impostor)
        assert client.connect() == "Success"
        assert client.publish(face, PROBE) == "Not authorized", impostor
    camera = raw("camera")
    assert camera.connect() == "Success"
    assert camera.publish(face, b'{"camera": true}') == "Success"
    assert emotion.wait_message(lambda m: m[1] == b'{"camera": true}')  # after every impostor's attempt
    assert [p for _, p, _ in emotion.received()] == [b'{"camera": true}']


def test_anonymous_and_wrong_password_are_refused(settings, raw):
    assert raw(None, None).connect() == "Not authorized"
    assert raw("staff", "wrong").connect() == "Not authorized"
    assert raw("nobody", "guess").connect() == "Not authorized"
    assert raw("staff").connect() == "Success"  # the right password, same broker, same moment
