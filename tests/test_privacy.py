"""The broker ACL: the face crop reaches the emotion service and nobody else."""

import pytest

from kiosk.events import Topics
from tests.conftest import Recorder, start_bus, wait_for

pytestmark = pytest.mark.integration

PROBE = b'{"probe": true}'


@pytest.mark.parametrize(
    "reader,can_read",
    [
        ("emotion", True),
        ("staff", False),
        ("monitor", False),
        ("web", False),
        ("story", False),
        ("illustrate", False),
    ],
)
def test_only_the_emotion_service_can_read_faces(settings, connect, reader, can_read):
    topics = Topics(settings.kiosk_id)
    received = Recorder()
    client = connect(reader)
    client.subscribe(f"kiosk/{settings.kiosk_id}/#", received)
    start_bus(client)
    camera = start_bus(connect("camera"))
    camera.publish(topics.face, PROBE).wait_for_publish(5)
    camera.publish(topics.presence, PROBE).wait_for_publish(5)  # a marker that arrives after the face
    if reader in ("emotion", "story", "illustrate"):  # these do not read presence: wait a moment instead
        wait_for(lambda: False, timeout=0.5)
    else:
        assert wait_for(lambda: topics.presence in received.topics())
    assert (topics.face in received.topics()) is can_read


def test_only_the_camera_may_publish_faces(settings, connect):
    topics = Topics(settings.kiosk_id)
    received = Recorder()
    emotion = connect("emotion")
    emotion.subscribe(topics.face, received)
    start_bus(emotion)
    for impostor in ("staff", "story", "web"):
        start_bus(connect(impostor), settle=0).publish(topics.face, PROBE).wait_for_publish(5)
    start_bus(connect("camera"), settle=0).publish(topics.face, b'{"camera": true}').wait_for_publish(5)
    assert wait_for(lambda: received.payloads())
    wait_for(lambda: False, timeout=0.3)
    assert received.payloads() == [b'{"camera": true}']


def test_anonymous_and_wrong_password_are_refused(settings):
    from kiosk.bus import BrokerAddress, Bus

    for username, password in ((None, None), ("staff", "wrong")):
        bus = Bus(BrokerAddress("127.0.0.1", settings.broker.port, username, password), "intruder", persistent=False)
        bus.start()
        try:
            assert not bus.wait_connected(1.5)
        finally:
            bus.stop()
