"""Server-side staff sessions: a random id in the cookie, only its SHA-256 in a small sqlite file.

Signed client-side cookies cannot be taken back: a cookie copied before logout stayed valid until it expired.
Here the cookie is a bare random id and the session lives in the store, so logging out, removing an account or
changing its password (``kiosk staff``, another process) ends it at once. Sessions also end after
``idle_s`` without a request and ``max_age_s`` after login, whatever happens. The store keeps only hashes of
the ids, so a copy of the file opens no session. With a file the sessions survive a dashboard restart (a
watchdog restart does not log carers out); ``":memory:"`` keeps them in the process only.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from kiosk.config import Settings

logger = logging.getLogger(__name__)

TOUCH_EVERY_S = 30.0  # last_seen is written at most this often (the page polls every 5 s)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_sessions (
    id_hash TEXT PRIMARY KEY,
    staff TEXT NOT NULL,
    generation TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL
)
"""


def sessions_file(settings: Settings) -> Path:
    return settings.dashboard.sessions_file or settings.run_dir / "staff-sessions.sqlite3"


class StaffSession(BaseModel):
    """One open staff session as the store keeps it (the id itself is never stored)."""

    staff: str
    generation: str
    csrf: str
    created: float
    last_seen: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class StaffSessions:
    def __init__(
        self,
        path: Path | str = ":memory:",
        idle_s: float = 30 * 60,
        max_age_s: float = 12 * 3600,
        per_account: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.per_account = per_account
        self.clock = clock
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            Path(self.path).touch(mode=0o600)
        # one connection, serialised by a lock: the staff page is a handful of carers, not a web farm
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(_SCHEMA)

    def start(self, staff: str, generation: str) -> tuple[str, StaffSession]:
        """A new session for ``staff``; returns the id for the cookie (shown once, stored only hashed)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        session = StaffSession(
            staff=staff, generation=generation, csrf=secrets.token_urlsafe(32), created=now, last_seen=now
        )
        with self._lock:
            self._purge(now)
            self._db.execute(
                "INSERT INTO staff_sessions VALUES (?, ?, ?, ?, ?, ?)",
                (_digest(session_id), staff, generation, session.csrf, now, now),
            )
            # an account keeps its newest sessions only, so the store stays small whatever logs in
            self._db.execute(
                "DELETE FROM staff_sessions WHERE staff = ? AND id_hash NOT IN "
                "(SELECT id_hash FROM staff_sessions WHERE staff = ? ORDER BY created DESC LIMIT ?)",
                (staff, staff, self.per_account),
            )
        return session_id, session

    def find(self, session_id: str) -> StaffSession | None:
        """The live session with this id (and a fresh ``last_seen``), or None: unknown, idle or too old."""
        if not session_id:
            return None
        now = self.clock()
        key = _digest(session_id)
        with self._lock:
            row = self._db.execute(
                "SELECT staff, generation, csrf, created, last_seen FROM staff_sessions WHERE id_hash = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            session = StaffSession(**dict(zip(StaffSession.model_fields, row, strict=True)))
            if now - session.created >= self.max_age_s or now - session.last_seen >= self.idle_s:
                self._db.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (key,))
                logger.info("staff session of %s expired", session.staff)
                return None
            if now - session.last_seen >= TOUCH_EVERY_S:
                self._db.execute("UPDATE staff_sessions SET last_seen = ? WHERE id_hash = ?", (now, key))
                session.last_seen = now
        return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (_digest(session_id),))

    def end_for(self, staff: str) -> int:
        """End every session of ``staff`` (account removed, password changed); how many there were."""
        with self._lock:
            return self._db.execute("DELETE FROM staff_sessions WHERE staff = ?", (staff,)).rowcount

    def count(self, staff: str | None = None) -> int:
        with self._lock:
            if staff is None:
                return self._db.execute("SELECT COUNT(*) FROM staff_sessions").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM staff_sessions WHERE staff = ?", (staff,)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _purge(self, now: float) -> None:
        self._db.execute(
            "DELETE FROM staff_sessions WHERE created <= ? OR last_seen <= ?", (now - self.max_age_s, now - self.idle_s)
        )
