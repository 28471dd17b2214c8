"""One child's visit is one session and one story: debounce arrivals, pick the best face, cool down.

A face must stay for ``steady_frames`` frames before the visit starts (a passer-by gets no story); the
best-quality face of those frames is the one sent for emotion; the child has left after ``leave_after_s``
without a face; a new visit cannot start until ``cooldown_s`` after that.

Several children (issue #14), the rule the tracker keeps:

- The closest steady face gets the visit. The camera feeds the tracker each frame's largest face (the
  detector sorts by area, and the closest child has the largest face). With ``same_face`` given, the steady
  wait follows that one face: when the largest face jumps to another child, the wait starts again for that
  child, so a child running past in front never lends a crop to the one standing still.
- A second child stepping in mid-visit does not take over: while a visit lasts, any face only keeps it alive;
  no second ``face`` event, no new story until the visit has ended and the cooldown has passed.
- Each child is counted once: one ``Arrived`` and one ``FaceReady`` per visit, and a look-away shorter than
  ``leave_after_s`` stays the same visit. A child who stays while another leaves keeps the visit going; they
  are the next visit only after the room was empty for ``leave_after_s`` and the cooldown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from kiosk.events import new_id

T = TypeVar("T")


class Boxed(Protocol):
    x: int
    y: int
    w: int
    h: int


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


def same_place(a: Boxed, b: Boxed) -> bool:
    """Two boxes of consecutive frames show the same face: each centre lies inside the other box."""
    acx, acy, bcx, bcy = a.x + a.w / 2, a.y + a.h / 2, b.x + b.w / 2, b.y + b.h / 2
    return a.x <= bcx <= a.x + a.w and a.y <= bcy <= a.y + a.h and b.x <= acx <= b.x + b.w and b.y <= acy <= b.y + b.h


@dataclass
class VisitTracker(Generic[T]):
    steady_frames: int = 5
    leave_after_s: float = 3.0
    cooldown_s: float = 10.0
    same_face: Callable[[T, T], bool] | None = None  # None: any face counts towards the steady wait
    session_id: str | None = None
    _steady: int = 0
    _best: T | None = None
    _best_quality: float = -1.0
    _previous: T | None = None
    _last_seen: float = 0.0
    _cooldown_until: float = field(default=float("-inf"))

    @property
    def visiting(self) -> bool:
        return self.session_id is not None

    def update(self, now: float, face: T | None, quality: float = 0.0) -> list[Arrived | FaceReady[T] | Left]:
        """Feed one frame's closest face (or None); returns what happened, in order."""
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
        if self._previous is not None and self.same_face is not None and not self.same_face(self._previous, face):
            self._reset()  # another child is now the closest: their own steady wait
        self._previous = face
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
        self._steady, self._best, self._best_quality, self._previous = 0, None, -1.0, None
