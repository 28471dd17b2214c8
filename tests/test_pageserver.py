"""Both pages run on the production server (cheroot), not werkzeug's development server: the page loads, an
SSE stream delivers an event the moment it arrives on the bus, and an open stream does not hold shutdown."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from kiosk.events import PresenceEvent, Topics
from kiosk.web.service import WebService
from tests.conftest import start_bus
from tests.servicekit import running

pytestmark = pytest.mark.integration


def read_event(response: http.client.HTTPResponse, wanted: str, timeout: float = 10.0) -> str | None:
    """The first ``data:`` line holding ``wanted``, read as the bytes arrive (no buffering in between)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = response.readline().decode()
        if line.startswith("data:") and wanted in line:
            return line
    return None


def test_the_kiosk_page_and_its_event_stream_under_the_production_server(settings, connect):
    topics = Topics(settings.kiosk_id)
    service = WebService(settings)
    with running(service):
        page = http.client.HTTPConnection("127.0.0.1", settings.web.port, timeout=10)
        page.request("GET", "/")
        answer = page.getresponse()
        assert answer.status == 200 and b"<html" in answer.read().lower()
        assert answer.getheader("Server") == "kiosk-page", "not the production server"

        stream = http.client.HTTPConnection("127.0.0.1", settings.web.port, timeout=10)
        stream.request("GET", "/events")
        events = stream.getresponse()
        assert events.status == 200 and events.getheader("Content-Type").startswith("text/event-stream")
        assert events.readline().startswith(b"retry:")
        camera = start_bus(connect("camera"))
        sent = time.monotonic()
        camera.publish(topics.presence, PresenceEvent(session_id="visit-1", state="arrived").to_json())
        assert read_event(events, "arrived"), "the presence event never reached the open stream"
        delivered_s = time.monotonic() - sent
        assert delivered_s < 2.0, f"the stream was buffered: {delivered_s:.2f} s"

        stopping = threading.Thread(target=lambda: (service.stop_event.set(), service.server.stop()))
        started = time.monotonic()
        stopping.start()
        stopping.join(10)
        assert time.monotonic() - started < 3.0, "an open stream held the server's shutdown"
