"""Carry a face data set to a GPU machine under its transfer limit: one WebP mosaic and the labels.

The lent machine takes at most 64 MiB of working tree (the repository counts), and FER2013 Training is
63 MB as an npz (52 MB even losslessly compressed). Its faces were decoded from JPEG copies already, and a
lossy WebP pass at quality 85 moves a pixel by about two grey levels on average — far less than the
training augmentation does — in 26 MB (JPEG needs 29 MB for a larger error). One mosaic shares its
headers among all faces (a small file each would spend a quarter of its bytes on them). Labels travel
exactly. ``unpack`` rebuilds the npz the training recipe reads.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

SIDE = 48
COLUMNS = 160  # 160 faces a row: a 7,680-pixel-wide mosaic (JPEG allows 65,535)
MOSAIC_NAME = "faces.webp"
MAX_WEBP_SIDE = 16383
LABELS_NAME = "labels.npz"


def to_mosaic(images: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """N×48×48 faces → one grey image, row by row; the last row is padded with black."""
    rows = math.ceil(len(images) / columns)
    padded = np.zeros((rows * columns, SIDE, SIDE), np.uint8)
    padded[: len(images)] = images
    return padded.reshape(rows, columns, SIDE, SIDE).transpose(0, 2, 1, 3).reshape(rows * SIDE, columns * SIDE)


def from_mosaic(mosaic: np.ndarray, count: int, columns: int = COLUMNS) -> np.ndarray:
    rows = mosaic.shape[0] // SIDE
    tiles = mosaic.reshape(rows, SIDE, columns, SIDE).transpose(0, 2, 1, 3).reshape(rows * columns, SIDE, SIDE)
    return np.ascontiguousarray(tiles[:count])


def pack(source: Path, destination: Path, quality: int) -> dict:
    """Write the mosaic and labels of ``source`` (an npz with ``images`` and ``labels``) into ``destination``."""
    with np.load(source) as data:
        images, labels = data["images"], data["labels"]
    destination.mkdir(parents=True, exist_ok=True)
    mosaic = to_mosaic(images)
    if max(mosaic.shape) > MAX_WEBP_SIDE:
        raise ValueError(f"{len(images)} faces make a {mosaic.shape} mosaic; WebP holds at most {MAX_WEBP_SIDE} a side")
    buffer = io.BytesIO()
    Image.fromarray(mosaic).save(buffer, format="WEBP", quality=quality, method=4)
    (destination / MOSAIC_NAME).write_bytes(buffer.getvalue())
    np.savez_compressed(destination / LABELS_NAME, labels=labels, count=len(labels), columns=COLUMNS)
    back = unpack_images(destination)
    report = {
        "faces": len(labels),
        "quality": quality,
        "bytes": buffer.tell() + (destination / LABELS_NAME).stat().st_size,
        "mean_abs_grey_error": round(float(np.abs(back.astype(np.int16) - images).mean()), 3),
    }
    logger.info("packed %s", report)
    return report


def unpack_images(directory: Path) -> np.ndarray:
    with np.load(directory / LABELS_NAME) as meta:
        count, columns = int(meta["count"]), int(meta["columns"])
    mosaic = np.asarray(Image.open(directory / MOSAIC_NAME).convert("L"))
    return from_mosaic(mosaic, count, columns)


def unpack(directory: Path, target: Path) -> Path:
    """Rebuild ``images`` and ``labels`` as the npz the training recipe reads."""
    with np.load(directory / LABELS_NAME) as meta:
        labels = meta["labels"]
    np.savez(target, images=unpack_images(directory), labels=labels)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu.pack_faces", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    packer = verbs.add_parser("pack", help="npz → mosaic + labels in a folder")
    packer.add_argument("source", type=Path)
    packer.add_argument("destination", type=Path)
    packer.add_argument("--quality", type=int, default=85)
    unpacker = verbs.add_parser("unpack", help="mosaic + labels → npz")
    unpacker.add_argument("directory", type=Path)
    unpacker.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.verb == "pack":
        print(json.dumps(pack(args.source, args.destination, args.quality)))
    else:
        unpack(args.directory, args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
