"""Pictures the kiosk page serves, kept on disk in a bounded directory (the oldest go first).

Only illustrations live here (drawn pictures of an invented hero), never a camera frame or face crop.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

SUFFIXES = {"image/svg+xml": ".svg", "image/png": ".png", "image/jpeg": ".jpg"}
TYPES = {suffix: media_type for media_type, suffix in SUFFIXES.items()}
SAFE_ID = re.compile(r"^[0-9a-f]{8,64}$")


class MediaStore:
    def __init__(self, directory: Path, max_files: int = 200, max_bytes: int = 200 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.lock = threading.Lock()

    def put(self, media_id: str, media_type: str, body: bytes) -> str:
        """Store a picture and return its file name; evicts the oldest beyond the bounds."""
        if not SAFE_ID.match(media_id) or media_type not in SUFFIXES:
            raise ValueError(f"refused media {media_id!r} of type {media_type!r}")
        name = media_id + SUFFIXES[media_type]
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, self.directory / name)
        self._evict()
        return name

    def get(self, name: str) -> tuple[str, bytes] | None:
        stem, _, suffix = name.rpartition(".")
        if not SAFE_ID.match(stem) or f".{suffix}" not in TYPES:
            return None
        path = self.directory / name
        try:
            return TYPES[f".{suffix}"], path.read_bytes()
        except FileNotFoundError:
            return None

    def _evict(self) -> None:
        with self.lock:
            files = sorted(
                (p for p in self.directory.iterdir() if p.suffix in TYPES), key=lambda p: p.stat().st_mtime_ns
            )
            total = sum(p.stat().st_size for p in files)
            while files and (len(files) > self.max_files or total > self.max_bytes):
                oldest = files.pop(0)
                total -= oldest.stat().st_size
                oldest.unlink(missing_ok=True)

    def __len__(self) -> int:
        return sum(1 for p in self.directory.iterdir() if p.suffix in TYPES)
