"""``kiosk emotion hygiene``: exact and near-duplicate faces shared by a training and a test split.

A test face that also sits in the training data inflates the test figure. Exact copies are found by their
bytes; near copies (re-encoded, slightly brightened) by a 64-bit difference hash (dHash) within a small
Hamming distance. FER2013's splits were decoded from JPEG copies, so near copies matter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from kiosk.emotion.data import load_faces

NEAR_BITS = 4  # dHash bits that may differ for two faces to count as the same picture


def dhash(images: np.ndarray) -> np.ndarray:
    """64-bit difference hashes of (N, H, W) uint8 images, as uint64."""
    small = np.stack([cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA) for image in images]).astype(np.int16)
    bits = (small[:, :, 1:] > small[:, :, :-1]).reshape(len(images), 64)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def popcount(values: np.ndarray) -> np.ndarray:
    bytes_view = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(bytes_view, axis=1).sum(axis=1)


def duplicates(train: np.ndarray, test: np.ndarray, near_bits: int = NEAR_BITS) -> dict:
    """Counts (and test indices) of test faces with an exact or near copy in ``train``."""
    train_digests = {hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in train}
    exact = [
        i for i, image in enumerate(test) if hashlib.blake2b(image.tobytes(), digest_size=16).digest() in train_digests
    ]
    train_hashes, test_hashes = dhash(train), dhash(test)
    near = []
    for i, value in enumerate(test_hashes):
        if popcount(np.bitwise_xor(train_hashes, value)).min() <= near_bits:
            near.append(i)
    flat = [i for i in near if test[i].std() < 2]  # blank faces hash alike without being the same picture
    return {
        "test_faces": len(test),
        "train_faces": len(train),
        "exact": len(exact),
        "near": len(near),
        "near_excluding_blank": len(near) - len(flat),
        "near_bits": near_bits,
        "exact_indices": exact[:50],
        "near_indices": near[:50],
        "all_near_indices": near,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk emotion hygiene", description=__doc__)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--near-bits", type=int, default=NEAR_BITS)
    args = parser.parse_args(argv)
    report = duplicates(load_faces(args.train).images, load_faces(args.test).images, args.near_bits)
    report.pop("all_near_indices")
    print(json.dumps(report))
    return 0
