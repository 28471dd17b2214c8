"""What the kiosk screen shows now, and the fan-out of changes to every open page (Server-Sent Events)."""

from __future__ import annotations

import base64
import json
import queue
import threading

from kiosk.events import Event, IllustrationEvent, PresenceEvent, StoryEvent, StoryPartialEvent
from kiosk.web.media import MediaStore

CLIENT_QUEUE = 256


class ScreenState:
    """The current visit, its story and pictures; thread-safe; broadcasts each change as an SSE message."""

    def __init__(self, media: MediaStore) -> None:
        self._lock = threading.Lock()
        self._clients: set[queue.Queue[str]] = set()
        self.media = media
        self.present = False
        self.session_id: str | None = None
        self.partial: dict | None = None
        self.story: dict | None = None
        self.pictures: dict[int, dict] = {}
        self.updated = 0.0

    # -- changes from the bus ----------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Take one event; a picture is checked and stored first, so a refused one leaves the screen as it was."""
        picture_name = None
        if isinstance(event, IllustrationEvent):
            picture = base64.b64decode(event.image_b64, validate=True)
            picture_name = self.media.put(event.event_id, event.media_type, picture)
        with self._lock:
            message = self._apply(event, picture_name)
            self.updated = event.ts
        if message:
            self._broadcast(*message)

    def _apply(self, event: Event, picture_name: str | None = None) -> tuple[str, dict] | None:
        if isinstance(event, PresenceEvent):
            self.present = event.state == "arrived"
            if self.present and event.session_id != self.session_id:
                self.session_id, self.partial, self.story, self.pictures = event.session_id, None, None, {}
            return "presence", {"state": event.state, "session_id": event.session_id}
        if event.session_id != self.session_id:
            self.session_id, self.partial, self.story, self.pictures = event.session_id, None, None, {}
        if isinstance(event, StoryPartialEvent):
            if self.story is None and (self.partial is None or event.seq >= self.partial["seq"]):
                self.partial = {"seq": event.seq, "text": event.text}
                return "partial", self.partial
            return None
        if isinstance(event, StoryEvent):
            self.story = {
                "story_id": event.event_id,
                "emotion": event.emotion,
                "title": event.title,
                "scenes": [{"text": s.text} for s in event.scenes],
                "generator": event.generator,
            }
            return "story", self.story
        if isinstance(event, IllustrationEvent):
            picture = {
                "story_id": event.story_id,
                "scene_index": event.scene_index,
                "scene_count": event.scene_count,
                "url": f"/media/{picture_name}",
                "illustrator": event.illustrator,
            }
            self.pictures[event.scene_index] = picture
            return "illustration", picture
        return None

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "present": self.present,
                "session_id": self.session_id,
                "partial": self.partial,
                "story": self.story,
                "pictures": [self.pictures[k] for k in sorted(self.pictures)],
            }

    # -- page connections --------------------------------------------------------------------
    def connect(self) -> queue.Queue[str]:
        client: queue.Queue[str] = queue.Queue(CLIENT_QUEUE)
        client.put(sse("state", self.snapshot()))
        with self._lock:
            self._clients.add(client)
        return client

    def disconnect(self, client: queue.Queue[str]) -> None:
        with self._lock:
            self._clients.discard(client)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def _broadcast(self, name: str, data: dict) -> None:
        message = sse(name, data)
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.put_nowait(message)
            except queue.Full:  # a stalled page catches up from a fresh snapshot when it reconnects
                self.disconnect(client)


def sse(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"
