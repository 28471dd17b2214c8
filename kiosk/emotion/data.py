"""Face data sets for training and evaluation: FER2013 npz files.

The npz layout is the one the shared FER2013 splits use: ``images`` (N×48×48 uint8) and ``labels``
(int, FER2013 order). Any file with those two arrays can be evaluated, so the product's accuracy can be
checked on data the project has never seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.emotion.labels import NUM_CLASSES

logger = logging.getLogger(__name__)

FACE_SIZE = 48


@dataclass(frozen=True)
class FaceSet:
    """Grey 48×48 faces and their FER2013 labels, held in memory."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"images must be N×48×48, got {self.images.shape}")
        if self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {self.images.dtype}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= NUM_CLASSES):
            raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)


def load_npz(path: str | Path) -> FaceSet:
    """Read an npz holding ``images`` and ``labels``; raise a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    with np.load(path, allow_pickle=False) as archive:
        missing = {"images", "labels"} - set(archive.files)
        if missing:
            raise ValueError(f"{path.name} lacks {sorted(missing)}; it holds {sorted(archive.files)}")
        faces = FaceSet(images=archive["images"], labels=archive["labels"].astype(np.int64))
    logger.info("loaded %d faces from %s", len(faces), path.name)
    return faces
