"""Staff accounts for the staff page: names and salted scrypt hashes (werkzeug), in a mode-600 JSON file."""

from __future__ import annotations

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
        if not name.isidentifier():
            raise ValueError("a staff name is letters, digits and underscores")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"a staff password needs at least {MIN_PASSWORD_LENGTH} characters")
        with self._lock:
            users = self._load()
            users[name] = generate_password_hash(password)
            self._save(users)

    def remove(self, name: str) -> None:
        with self._lock:
            users = self._load()
            users.pop(name, None)
            self._save(users)

    def verify(self, name: str, password: str) -> bool:
        stored = self._load().get(name)
        matches = check_password_hash(stored or _DUMMY_HASH, password)
        return stored is not None and matches

    def __len__(self) -> int:
        return len(self._load())
