"""One child's visit is one session and one story: debounce arrivals, pick the best face, cool down.

A face must stay for ``steady_frames`` frames before the visit starts (a passer-by gets no story); the
best-quality face of those frames is the one sent for emotion; the child has left after ``leave_after_s``
without a face; a new visit cannot start until ``cooldown_s`` after that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kiosk.events import new_id

T = TypeVar("T")


@dataclass(frozen=True)
class Arrived:
    session_id: str


@dataclass(frozen=True)
class FaceReady(Generic[T]):
    session_id: str
    best: T


@dataclass(frozen=True)
class Left:
    session_id: str


@dataclass
class VisitTracker(Generic[T]):
    steady_frames: int = 5
    leave_after_s: float = 3.0
    cooldown_s: float = 10.0
    session_id: str | None = None
    _steady: int = 0
    _best: T | None = None
    _best_quality: float = -1.0
    _last_seen: float = 0.0
    _cooldown_until: float = field(default=float("-inf"))

    @property
    def visiting(self) -> bool:
        return self.session_id is not None

    def update(self, now: float, face: T | None, quality: float = 0.0) -> list[Arrived | FaceReady[T] | Left]:
        """Feed one frame's best face (or None); returns what happened, in order."""
        if self.visiting:
            if face is not None:
                self._last_seen = now
                return []
            if now - self._last_seen >= self.leave_after_s:
                left = Left(self.session_id)
                self.session_id = None
                self._cooldown_until = now + self.cooldown_s
                self._reset()
                return [left]
            return []
        if face is None or now < self._cooldown_until:
            self._reset()
            return []
        self._steady += 1
        if quality > self._best_quality:
            self._best, self._best_quality = face, quality
        if self._steady < self.steady_frames:
            return []
        self.session_id = new_id()
        self._last_seen = now
        best = self._best
        self._reset()
        return [Arrived(self.session_id), FaceReady(self.session_id, best)]

    def _reset(self) -> None:
        self._steady, self._best, self._best_quality = 0, None, -1.0
