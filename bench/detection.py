"""Detection benchmark (JSON): recall per condition, false alarms on face-free frames and fps per detector.

Scenes come from ``bench.detection_scenes`` (faces composited into drawn playrooms: occluded, tilted, close,
small, several; and rooms, toys and drawings with no face). Each detector sees the grey frame the camera
service gives it, as in the kiosk. A detection finds a face when each box's centre lies inside the other
and their sizes agree within 2.5×, so detectors that box a face differently (HOG: brows to lip; YuNet:
forehead to chin) are judged alike. Detectors with a confidence (YuNet, dlib MMOD) are run at a low
threshold once and scored at several thresholds, which is how the kiosk's ``min_score`` was chosen.

Emotion on covered faces: the same scenes drawn with FER2013 PublicTest faces (which the emotion model never
saw), cropped as the camera crops them and classified by the kiosk's emotion model: the accuracy on clean
faces beside the accuracy behind a hand, a sleeve, hair or a toy, both on the kiosk detector's own box and
on the true box (what the cover costs the classifier, whatever the detector does).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench import detection_scenes, machine
from kiosk.camera.detector import Detection, DlibHogDetector, HaarFaceDetector, YuNetDetector, face_crop

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
SCORED = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Run:
    """What one detector found in every scene, with the time each call took."""

    name: str
    frames: list[tuple[str, list[Box], list[str], list[tuple[Box, float]]]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def mmod_detector(detect_width: int = 320) -> Callable[[np.ndarray], list[tuple[Box, float]]] | None:
    """dlib's CNN (MMOD) on a down-scaled frame, from ``face-recognition-models``' weights, if installed.

    The package's ``__init__`` needs ``pkg_resources``; its model file is found without importing it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    weights = Path(spec.submodule_search_locations[0]) / "models" / "mmod_human_face_detector.dat"
    if not weights.exists():
        return None
    import dlib

    cnn = dlib.cnn_face_detection_model_v1(str(weights))

    def detect(grey: np.ndarray) -> list[tuple[Box, float]]:
        scale = min(1.0, detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = []
        for hit in cnn(small, 0):
            r = hit.rect
            box = (int(r.left() / scale), int(r.top() / scale), int(r.width() / scale), int(r.height() / scale))
            found.append((box, float(hit.confidence)))
        return found

    return detect


def kiosk_detector(detector) -> Callable[[np.ndarray], list[tuple[Box, float]]]:
    def detect(grey: np.ndarray) -> list[tuple[Box, float]]:
        return [((d.x, d.y, d.w, d.h), d.score if d.score is not None else 1.0) for d in detector.detect(grey)]

    return detect


def candidates(mmod_width: int, only: list[str] | None) -> dict[str, Callable[[np.ndarray], list[tuple[Box, float]]]]:
    found = {
        "dlib-hog": kiosk_detector(DlibHogDetector(48, detect_width=640)),
        "haar": kiosk_detector(HaarFaceDetector(48)),
        "yuface": kiosk_detector(YuNetDetector(48)),  # as the kiosk runs it: 640 px, then 320 px and rolled
        "yuface-upright": kiosk_detector(YuNetDetector(48, rolls=())),  # what the rolled passes cost and add
        "yuface@640": kiosk_detector(YuNetDetector(48, detect_width=640, min_score=0.3, close_width=None)),
        "yuface@320": kiosk_detector(YuNetDetector(48, detect_width=320, min_score=0.3, close_width=None)),
    }
    mmod = mmod_detector(mmod_width) if not only or any(n.startswith("dlib-mmod") for n in only) else None
    if mmod is None:
        logger.warning("face-recognition-models is not installed: dlib MMOD left out")
    else:
        found[f"dlib-mmod@{mmod_width}"] = mmod
    return {name: detect for name, detect in found.items() if not only or name.split("@")[0] in only or name in only}


def matches(truth: Box, box: Box) -> bool:
    """Each box's centre inside the other, sizes within 2.5× of each other."""
    tx, ty, tw, th = truth
    bx, by, bw, bh = box
    tcx, tcy, bcx, bcy = tx + tw / 2, ty + th / 2, bx + bw / 2, by + bh / 2
    inside = bx <= tcx <= bx + bw and by <= tcy <= by + bh and tx <= bcx <= tx + tw and ty <= bcy <= ty + th
    ratio = (bw * bh) / max(1, tw * th)
    return inside and 1 / 6.25 <= ratio <= 6.25


def score_run(run: Run, threshold: float) -> dict:
    """Recall per condition (and per face source), false alarms per face-free frame, at one threshold."""
    found: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {}
    false_alarms: dict[str, list[int]] = {}
    for condition, truths, face_sources, hits in run.frames:
        boxes = [box for box, score in hits if score >= threshold]
        if condition.startswith("free_"):
            false_alarms.setdefault(condition, []).append(len(boxes))
            continue
        unused = list(boxes)
        for truth, source in zip(truths, face_sources, strict=True):
            hit = next((b for b in unused if matches(truth, b)), None)
            if hit is not None:
                unused.remove(hit)
            found.setdefault(condition, []).append(hit is not None)
            by_source.setdefault(source, []).append(hit is not None)
        false_alarms.setdefault("in_face_scenes", []).append(len(unused))
    free = [n for c, counts in false_alarms.items() if c.startswith("free_") for n in counts]
    return {
        "recall": {c: round(float(np.mean(v)), 3) for c, v in found.items()},
        "recall_by_source": {s: round(float(np.mean(v)), 3) for s, v in by_source.items()},
        "false_alarms_per_100_free_frames": round(100 * sum(free) / max(1, len(free)), 1),
        "false_alarms_per_100": {c: round(100 * float(np.mean(v)), 1) for c, v in false_alarms.items()},
        "worst_face_condition": min(found, key=lambda c: np.mean(found[c])) if found else None,
    }


def timing(run: Run) -> dict:
    ms = sorted(s * 1000 for s in run.seconds)
    return {
        "frames": len(ms),
        "detect_ms_p50": round(statistics.median(ms), 1),
        "detect_ms_p90": round(ms[int(len(ms) * 0.9)], 1),
        "fps_grey_and_detect": round(len(ms) / (sum(ms) / 1000), 1),
    }


def run_all(
    per_condition: int, mmod_per_condition: int, mmod_width: int, seed: int, only: list[str] | None = None
) -> dict[str, Run]:
    detectors = candidates(mmod_width, only)
    runs = {name: Run(name) for name in detectors}
    counts: dict[str, int] = {}
    for scene in detection_scenes.scenes(per_condition, seed):
        counts[scene.condition] = counts.get(scene.condition, 0) + 1
        for name, detect in detectors.items():
            if name.startswith("dlib-mmod") and counts[scene.condition] > mmod_per_condition:
                continue
            started = time.perf_counter()
            grey = cv2.cvtColor(scene.frame, cv2.COLOR_BGR2GRAY)  # as the camera service does
            hits = detect(grey)
            runs[name].seconds.append(time.perf_counter() - started)
            runs[name].frames.append((scene.condition, scene.faces, scene.sources, hits))
    return runs


EMOTION_CONDITIONS = ("clean", *detection_scenes.OCCLUSIONS, "hand_tilted_close")


def emotion_on_covered_faces(per_condition: int, seed: int) -> dict:
    """Emotion accuracy per condition on PublicTest faces composited into the scenes (photos carry no label)."""
    from kiosk.config import Settings
    from kiosk.emotion.classifier import EmotionClassifier
    from kiosk.modelstore.manifest import ModelError

    model_dir = Settings().emotion.model_dir
    try:
        classifier = EmotionClassifier(model_dir, ["onnxruntime-cpu"], threads=1)
    except (ModelError, OSError) as exc:
        return {"skipped": f"emotion model unavailable: {exc}"}
    detector = YuNetDetector(48)
    result: dict = {"model": classifier.model_name, "fer_split": "publictest", "conditions": {}}
    for condition in EMOTION_CONDITIONS:
        faces = detected = right_on_detection = right_on_truth = 0
        for index in range(per_condition):
            scene = detection_scenes.face_scene(condition, index, seed, fer_split="publictest")
            grey = cv2.cvtColor(scene.frame, cv2.COLOR_BGR2GRAY)
            found = [(d.x, d.y, d.w, d.h) for d in detector.detect(grey)]
            for truth, label in zip(scene.faces, scene.labels, strict=True):
                if label is None:
                    continue
                faces += 1
                right_on_truth += emotion_index(classifier, grey, truth) == label
                box = next((b for b in found if matches(truth, b)), None)
                if box is not None:
                    detected += 1
                    right_on_detection += emotion_index(classifier, grey, box) == label
        result["conditions"][condition] = {
            "faces": faces,
            "detected": detected,
            "accuracy_on_detected_box": round(right_on_detection / max(1, detected), 3),
            "accuracy_on_true_box": round(right_on_truth / max(1, faces), 3),
            "right_story_of_all_faces": round(right_on_detection / max(1, faces), 3),
        }
    return result


def emotion_index(classifier, grey: np.ndarray, box: Box) -> int:
    from kiosk.emotion.labels import EMOTIONS

    crop = face_crop(grey, Detection(*box, quality=0.0))
    return EMOTIONS.index(classifier.classify(crop).emotion)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-condition", type=int, default=50, help="scenes per condition")
    parser.add_argument("--mmod-per-condition", type=int, default=10, help="dlib MMOD is slow: fewer scenes")
    parser.add_argument("--mmod-width", type=int, default=320, help="dlib MMOD runs on a frame this wide")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detectors", nargs="*", help="only these (e.g. yuface yuface@640 dlib-hog)")
    parser.add_argument(
        "--emotion-per-condition", type=int, default=50, help="scenes per condition for emotion accuracy (0: none)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if not detection_scenes.shared_data_available():
        logger.warning("../shared/data is missing: faces come from scikit-image's astronaut alone")
    cv2.setNumThreads(2)
    runs = run_all(args.per_condition, args.mmod_per_condition, args.mmod_width, args.seed, args.detectors)
    result: dict = {
        "benchmark": "detection",
        "machine": machine.describe(opencv_threads=2),
        "frame": f"{detection_scenes.WIDTH}x{detection_scenes.HEIGHT}",
        "scenes_per_condition": args.per_condition,
        "conditions": list(detection_scenes.FACE_CONDITIONS + detection_scenes.FREE_CONDITIONS),
        "seed": args.seed,
        "detectors": {},
    }
    for name, run in runs.items():
        entry = timing(run)
        thresholds = SCORED if name.startswith("yuface@") else (None,)
        if name.startswith("dlib-mmod"):
            thresholds = (0.0, 0.3, 0.5, 0.8)
        for threshold in thresholds:
            scored = score_run(run, threshold if threshold is not None else -np.inf)
            key = "at_threshold" if threshold is None else f"min_score_{threshold}"
            entry[key] = scored
        result["detectors"][name] = entry
    if args.emotion_per_condition and detection_scenes.shared_data_available():
        result["emotion_on_covered_faces"] = emotion_on_covered_faces(args.emotion_per_condition, args.seed)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
