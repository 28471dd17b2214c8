"""Pictures and narration the kiosk page serves, kept on disk in a bounded directory (the oldest go first).

Only illustrations (drawn pictures of an invented hero) and the story read aloud live here, never a camera
frame, a face crop or anything else of the child. Narration is 16-bit mono WAV, checked from its header.

A picture comes from the bus and is decoded by the kiosk's browser, so it is checked before it is kept: a
PNG or JPEG must be what its type says and declare at most ``MAX_SIDE`` pixels a side (read from its header
by PIL, without decoding: a few hundred bytes can declare a gigapixel), and an SVG must be well-formed XML
with an ``<svg>`` root, no DTD or entity declarations (billion laughs), no scripts, event handlers or
foreign objects.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from pathlib import Path
from xml.parsers import expat

from PIL import Image, UnidentifiedImageError

from kiosk.voice.audio import wav_seconds

logger = logging.getLogger(__name__)

SUFFIXES = {"image/svg+xml": ".svg", "image/png": ".png", "image/jpeg": ".jpg", "audio/wav": ".wav"}
TYPES = {suffix: media_type for media_type, suffix in SUFFIXES.items()}
SAFE_ID = re.compile(r"^[0-9a-f]{8,64}$")
MAX_SIDE = 4096  # pictures are drawn at 512–1024 px; the kiosk's screen never needs more
RASTER_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
SVG_ROOT = "http://www.w3.org/2000/svg svg"
SVG_FORBIDDEN = ("script", "foreignObject", "iframe", "embed", "object")


def check_raster(media_type: str, body: bytes) -> None:
    """Refuse a PNG/JPEG that is not what it says or that declares more than ``MAX_SIDE`` pixels a side."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            kind, width, height = image.format, image.width, image.height
    except Image.DecompressionBombError:
        raise ValueError(f"{media_type} picture declares a gigapixel image: a decompression bomb") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError):  # ultralytics patches open()
        raise ValueError(f"{media_type} picture is not a readable image") from None
    if kind != RASTER_FORMATS[media_type]:
        raise ValueError(f"{media_type} picture is {kind}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValueError(f"{media_type} picture declares {width}×{height} pixels; the most is {MAX_SIDE}×{MAX_SIDE}")


def check_svg(body: bytes) -> None:
    """Refuse an SVG that is not well-formed, declares a DTD or entities, or holds script of any kind."""
    elements = 0

    def refuse_declarations(*_: object) -> None:
        raise ValueError("SVG picture declares a DTD or entities")

    def on_element(name: str, attributes: dict[str, str]) -> None:
        nonlocal elements
        elements += 1
        if elements == 1 and name != SVG_ROOT:
            raise ValueError("SVG picture has no <svg> root")
        if name.rpartition(" ")[2] in SVG_FORBIDDEN:
            raise ValueError(f"SVG picture holds a <{name.rpartition(' ')[2]}> element")
        if any(key.rpartition(" ")[2].lower().startswith("on") for key in attributes):
            raise ValueError("SVG picture holds an event handler attribute")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = refuse_declarations
    parser.EntityDeclHandler = refuse_declarations
    parser.StartElementHandler = on_element
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise ValueError(f"SVG picture is not well-formed XML: {expat.ErrorString(exc.code)}") from None


def check_picture(media_type: str, body: bytes) -> None:
    """Raise ``ValueError`` for a picture the kiosk's browser must never be given."""
    if media_type == "image/svg+xml":
        check_svg(body)
    elif media_type == "audio/wav":
        wav_seconds(body)
    elif media_type in RASTER_FORMATS:
        check_raster(media_type, body)
    else:
        raise ValueError(f"refused media type {media_type!r}")


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
            raise ValueError(f"refused media {media_id[:64]!r} of type {media_type[:64]!r}")
        check_picture(media_type, body)
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
