"""What the kiosk screen shows now, and the fan-out of changes to every open page (Server-Sent Events)."""

from __future__ import annotations

import base64
import json
import queue
import threading

from kiosk.events import (
    MAX_PARTS,
    Event,
    IllustrationEvent,
    NarrationEvent,
    PresenceEvent,
    StoryEvent,
    StoryPartialEvent,
)
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
        self.narration: dict[tuple[int, int], dict] = {}  # (scene, part) -> what the page plays
        self.updated = 0.0

    # -- changes from the bus ----------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Take one event; a picture or sound is checked and stored first, so a refused one changes nothing."""
        media_name = None
        if isinstance(event, IllustrationEvent):
            picture = base64.b64decode(event.image_b64, validate=True)
            media_name = self.media.put(event.event_id, event.media_type, picture)
        elif isinstance(event, NarrationEvent):
            if event.session_id != self.session_id:
                return  # the last visit's voice, late: it never starts a visit or replaces this one
            if event.audio_b64 is not None and event.media_type is not None:
                sound = base64.b64decode(event.audio_b64, validate=True)
                media_name = self.media.put(event.event_id, event.media_type, sound)
        with self._lock:
            message = self._apply(event, media_name)
            self.updated = event.ts
        if message:
            self._broadcast(*message)

    def _apply(self, event: Event, media_name: str | None = None) -> tuple[str, dict] | None:
        if isinstance(event, PresenceEvent):
            self.present = event.state == "arrived"
            if self.present and event.session_id != self.session_id:
                self._new_visit(event.session_id)
            return "presence", {"state": event.state, "session_id": event.session_id}
        if event.session_id != self.session_id:
            self._new_visit(event.session_id)
        if isinstance(event, StoryPartialEvent):
            if self.story is None and (self.partial is None or event.seq >= self.partial["seq"]):
                self.partial = {"session_id": event.session_id, "seq": event.seq, "text": event.text}
                return "partial", self.partial
            return None
        if isinstance(event, StoryEvent):
            self.story = {
                "session_id": event.session_id,
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
                "url": f"/media/{media_name}",
                "illustrator": event.illustrator,
            }
            self.pictures[event.scene_index] = picture
            return "illustration", picture
        if isinstance(event, NarrationEvent):
            part = {
                "session_id": event.session_id,
                "scene_index": event.scene_index,
                "part": event.part,
                "parts": event.parts,
                "text": event.text,
                "url": f"/media/{media_name}" if media_name else None,
                "duration_s": event.duration_s,
                "words": [w.model_dump() for w in event.words],
                "timings": event.timings,
                "skipped": event.skipped,
            }
            self.narration[(event.scene_index, event.part if event.parts else MAX_PARTS)] = part
            return "narration", part
        return None

    def _new_visit(self, session_id: str) -> None:
        self.session_id, self.partial, self.story, self.pictures, self.narration = session_id, None, None, {}, {}

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "present": self.present,
                "session_id": self.session_id,
                "partial": self.partial,
                "story": self.story,
                "pictures": [self.pictures[k] for k in sorted(self.pictures)],
                "narration": [self.narration[k] for k in sorted(self.narration)],
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
