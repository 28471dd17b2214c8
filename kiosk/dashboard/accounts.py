"""Staff accounts for the staff page: names and salted scrypt hashes (werkzeug), in a mode-600 JSON file.

Each account's *generation* is a digest of its stored hash. Every password change writes a freshly salted hash,
so the generation changes with it, and a removed account has none: a session remembers the generation it was
opened with and ends as soon as they differ, even when another process (``kiosk staff``) edited the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from kiosk.config import Settings

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
# Compared against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-at-all")


def users_file(settings: Settings) -> Path:
    return settings.dashboard.users_file or settings.broker.secrets_dir / "staff-users.json"


def _generation(stored_hash: str) -> str:
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:32]


class StaffAccounts:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        return json.loads(self.path.read_text())

    def _save(self, users: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.touch(mode=0o600)
        temporary.write_text(json.dumps(users, indent=1))
        os.replace(temporary, self.path)

    def set_password(self, name: str, password: str) -> None:
        """Add the account or change its password (which ends its sessions: the generation changes)."""
        if not name.isidentifier():
            raise ValueError("a staff name is letters, digits and underscores")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"a staff password needs at least {MIN_PASSWORD_LENGTH} characters")
        with self._lock:
            users = self._load()
            users[name] = generate_password_hash(password)
            self._save(users)

    def remove(self, name: str) -> bool:
        """Remove the account; False when there was none."""
        with self._lock:
            users = self._load()
            existed = users.pop(name, None) is not None
            self._save(users)
        return existed

    def exists(self, name: str) -> bool:
        return name in self._load()

    def check(self, name: str, password: str) -> str | None:
        """The account's generation when the password is right, else None (same cost for unknown names)."""
        stored = self._load().get(name)
        matches = check_password_hash(stored or _DUMMY_HASH, password)
        return _generation(stored) if stored is not None and matches else None

    def verify(self, name: str, password: str) -> bool:
        return self.check(name, password) is not None

    def generation(self, name: str) -> str | None:
        """Changes with every password change; None once the account is gone."""
        stored = self._load().get(name)
        return None if stored is None else _generation(stored)

    def __len__(self) -> int:
        return len(self._load())
