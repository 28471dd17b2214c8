"""``kiosk emotion eval``: the served model's figures on any npz of faces (``images`` N×48×48, ``labels``).

It runs the model exactly as the emotion service does (the model directory, its manifest and the runtime
chosen here), so the product's accuracy can be checked on data the project has never seen.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from kiosk.config import Settings
from kiosk.emotion import metrics
from kiosk.emotion.classifier import EmotionClassifier, face_pixels, tta_views
from kiosk.emotion.data import load_faces
from kiosk.emotion.hygiene import duplicates

logger = logging.getLogger(__name__)


def predict(classifier: EmotionClassifier, images: np.ndarray, tta: bool, batch: int = 256) -> np.ndarray:
    """Logits for every face (mean over the TTA views when asked)."""
    chunks = []
    for start in range(0, len(images), batch):
        pixels = face_pixels(images[start : start + batch])
        views = tta_views(pixels) if tta else [pixels]
        logits = classifier.runtime.logits(np.ascontiguousarray(np.concatenate(views)))  # one call for all views
        chunks.append(logits.reshape(len(views), len(pixels), -1).mean(axis=0))
    return np.concatenate(chunks)


def single_face_ms(classifier: EmotionClassifier, images: np.ndarray, tta: bool, repeats: int = 200) -> float:
    """Median latency of one face, preprocessing included, on the classifier's threads (1 by default)."""
    for image in images[:10]:
        predict(classifier, image[None], tta)
    times = []
    for image in images[:repeats]:
        started = time.perf_counter()
        predict(classifier, image[None], tta)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def evaluate(
    model_dir: Path, data: Path, tta: bool, runtimes: list[str], threads: int = 1, exclude_copies_of: Path | None = None
) -> dict:
    faces = load_faces(data)
    classifier = EmotionClassifier(model_dir, runtimes, threads)
    logits = predict(classifier, faces.images, tta)
    raw = metrics.summarise(faces.labels, metrics.softmax(logits))
    calibrated = metrics.summarise(faces.labels, metrics.softmax(logits, classifier.temperature))
    clean = {}
    if exclude_copies_of is not None:
        found = duplicates(load_faces(exclude_copies_of).images, faces.images)
        keep = np.setdiff1d(np.arange(len(faces)), found["all_near_indices"])
        subset = metrics.summarise(faces.labels[keep], metrics.softmax(logits[keep]))
        clean = {
            "without_training_copies": {
                "n": subset["n"],
                "accuracy": round(subset["accuracy"], 4),
                "macro_recall": round(subset["macro_recall"], 4),
                "excluded_exact": found["exact"],
                "excluded_near": found["near"],
            }
        }
    return clean | {
        "model": classifier.model_name,
        "runtime": classifier.runtime.name,
        "data": data.name,
        "tta": tta,
        "n": raw["n"],
        "accuracy": round(raw["accuracy"], 4),
        "macro_recall": round(raw["macro_recall"], 4),
        "per_class_recall": raw["per_class_recall"],
        "confusion": raw["confusion"],
        "ece_15_bins": {
            "uncalibrated": raw["ece"],
            "calibrated": calibrated["ece"],
            "temperature": classifier.temperature,
        },
        "ms_per_face": single_face_ms(classifier, faces.images, tta),
        "threads": threads,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk emotion eval", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="npz with images (N×48×48 uint8) and labels")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the configured one)")
    parser.add_argument("--tta", action="store_true", help="average 10 test-time views per face")
    parser.add_argument("--runtime", action="append", help="runtime(s) to try, in order (default: configured)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--exclude-copies-of", type=Path, help="training npz: also report the faces it lacks")
    parser.add_argument("--json", action="store_true", help="print one JSON object (default: a short summary)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    report = evaluate(
        args.model or settings.emotion.model_dir,
        args.data,
        args.tta,
        args.runtime or settings.emotion.runtimes,
        args.threads,
        args.exclude_copies_of,
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{report['model']} on {report['data']} ({report['runtime']}, TTA {report['tta']}): "
            f"accuracy {report['accuracy']:.2%}, macro recall {report['macro_recall']:.2%}, "
            f"{report['ms_per_face']} ms/face"
        )
    return 0
