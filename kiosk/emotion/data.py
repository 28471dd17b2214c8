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
HOLDOUT_SEED = 2013  # one fixed holdout for every run and every ensemble member, whatever their own seeds
MAX_PHOTO_SIDE = 8000  # a face photo in a training folder; a larger header is refused before decoding


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


def holdout(faces: FaceSet, fraction: float, seed: int = HOLDOUT_SEED) -> tuple[FaceSet, FaceSet]:
    """(rest, held out): a deterministic stratified split that keeps ``fraction`` of every class apart.

    The best epoch and the calibration temperature are chosen on the held-out part of Training, so the split
    the figures are reported on (PublicTest) plays no part in any choice.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the holdout fraction must lie between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(faces.labels == label)
        held.append(rng.permutation(members)[: round(fraction * len(members))])
    mask = np.zeros(len(faces), bool)
    mask[np.concatenate(held)] = True
    return FaceSet(faces.images[~mask], faces.labels[~mask]), FaceSet(faces.images[mask], faces.labels[mask])


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


def load_fer_csv(path: str | Path, usage: str | None = None) -> FaceSet:
    """Kaggle's ``fer2013.csv`` (``emotion,pixels,Usage``; the layout torchvision's FER2013 also reads),
    optionally one split (``Training``, ``PublicTest``, ``PrivateTest``)."""
    import csv

    path = Path(path)
    images, labels = [], []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path.name} lacks columns {sorted(missing)}")
        for row in reader:
            if usage and row.get("Usage") != usage:
                continue
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            if pixels.size != FACE_SIZE * FACE_SIZE:
                raise ValueError(f"{path.name}: a row has {pixels.size} pixels, not {FACE_SIZE * FACE_SIZE}")
            images.append(pixels.reshape(FACE_SIZE, FACE_SIZE))
            labels.append(int(row["emotion"]))
    faces = FaceSet(np.stack(images) if images else np.zeros((0, 48, 48), np.uint8), np.array(labels, np.int64))
    logger.info("loaded %d faces from %s%s", len(faces), path.name, f" ({usage})" if usage else "")
    return faces


def load_image_folder(root: str | Path) -> FaceSet:
    """``root/<emotion>/*.jpg|png`` (emotion names as in FER2013), resized to grey 48×48."""
    import cv2

    from kiosk.emotion.classifier import declared_image
    from kiosk.emotion.labels import EMOTIONS

    root = Path(root)
    images, labels = [], []
    for label, emotion in enumerate(EMOTIONS):
        for path in sorted((root / emotion).glob("*")) if (root / emotion).is_dir() else []:
            if path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp"}:
                continue
            try:
                _, width, height = declared_image(path.read_bytes())
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
            if max(width, height) > MAX_PHOTO_SIDE:
                raise ValueError(f"{path} is {width}×{height} pixels; a face photo is at most {MAX_PHOTO_SIDE} a side")
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ValueError(f"{path} is not a readable image")
            images.append(cv2.resize(image, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA))
            labels.append(label)
    if not images:
        raise ValueError(f"no images under {root}/<emotion>/ (emotions: {', '.join(EMOTIONS)})")
    return FaceSet(np.stack(images), np.array(labels, np.int64))


def load_faces(spec: str | Path) -> FaceSet:
    """Any supported data set: ``file.npz``, ``fer2013.csv[:Usage]`` or an image folder."""
    text = str(spec)
    if ".csv" in text:
        path, _, usage = text.partition(".csv")
        return load_fer_csv(path + ".csv", usage.lstrip(":") or None)
    if Path(text).is_dir():
        return load_image_folder(text)
    return load_npz(text)
