"""Choose an ensemble of trained emotion networks on the Training holdout, then report it on PublicTest.

Members are ``best.pt`` checkpoints from ``kiosk emotion train`` (GPU leases) and shipped ONNX model
directories. Every member's logits are computed once with flip TTA (the face and its mirror) on the holdout
of Training that chose each member's best epoch, and on PublicTest; they are cached, so trying subsets is
free. The subset is chosen by greedy forward selection (Caruana et al., 2004) on holdout accuracy: start
from the best member, add whichever member (repeats allowed, i.e. weights) raises holdout accuracy most,
stop when none does. PublicTest is read only once the choice is made, for the report.

A member whose training saw the holdout cannot be judged on it: the shipped compact pair scores 80% there
(it trained on all of Training) and 68% on PublicTest. Pass only members trained with ``--val-from-train``.

    python -m gpu.ensemble --train FER/fer2013_training.npz --test FER/fer2013_publictest.npz \
        --member runs/gpu-lease/*/best.pt --member models/emotion/kiosk-compact-cnn
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from kiosk.emotion import metrics
from kiosk.emotion.data import holdout, load_faces
from kiosk.emotion.metrics import softmax

logger = logging.getLogger(__name__)


def member_name(path: Path) -> str:
    return path.parent.name if path.name == "best.pt" else path.name


def flip_logits(predict, images: np.ndarray) -> np.ndarray:
    """Mean logits of the faces and their mirror images (uint8 grey, N×48×48)."""
    return (predict(images) + predict(np.ascontiguousarray(images[..., ::-1]))) / 2


def predictor(path: Path, threads: int):
    """uint8 faces -> logits, for a ``best.pt`` checkpoint (PyTorch) or a model directory (the kiosk's runtime)."""
    if path.is_dir():
        from kiosk.emotion.classifier import face_pixels
        from kiosk.emotion.runtimes import open_runtime
        from kiosk.modelstore.manifest import load_manifest

        onnx_file = next(f.path for f in load_manifest(path).files if f.path.endswith(".onnx"))
        runtime = open_runtime(path / onnx_file, ["onnxruntime-cpu"], threads)
        return lambda images: runtime.logits(face_pixels(images))
    import torch

    from kiosk.emotion.export import load_checkpoints
    from kiosk.emotion.train import predict_logits

    torch.set_num_threads(threads)
    model = load_checkpoints([path])

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return predict_logits(model, images, batch_size=256)

    return run


def cached_logits(members: list[Path], split: str, faces, cache: Path, threads: int) -> dict[str, np.ndarray]:
    """Flip-TTA logits of every member on ``split`` (computed once, kept in ``cache``)."""
    from tqdm import tqdm

    stored = dict(np.load(cache)) if cache.exists() else {}
    for path in tqdm(members, desc=f"members on {split}", unit="net"):
        key = f"{member_name(path)}/{split}"
        if key not in stored:
            stored[key] = flip_logits(predictor(path, threads), faces.images)
            np.savez(cache, **stored)
    return {member_name(p): stored[f"{member_name(p)}/{split}"] for p in members}


def greedy_selection(holdout_probs: dict[str, np.ndarray], labels: np.ndarray, max_size: int = 12) -> list[str]:
    """Forward selection with replacement on holdout accuracy (ties: lower negative log-likelihood)."""

    def quality(names: list[str]) -> tuple[float, float]:
        probs = np.mean([holdout_probs[n] for n in names], axis=0)
        accuracy = float((probs.argmax(1) == labels).mean())
        nll = float(-np.log(probs[np.arange(len(labels)), labels] + 1e-9).mean())
        return accuracy, -nll

    chosen: list[str] = []
    best = (-1.0, -np.inf)
    while len(chosen) < max_size:
        trials = {name: quality([*chosen, name]) for name in holdout_probs}
        name, score = max(trials.items(), key=lambda item: item[1])
        if score <= best:
            break
        chosen.append(name)
        best = score
        logger.info("+ %s: holdout accuracy %.4f", name, score[0])
    return chosen


def report(names: list[str], logits: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    probs = np.mean([softmax(logits[n]) for n in names], axis=0)
    summary = metrics.summarise(labels, probs)
    return {"accuracy": round(summary["accuracy"], 4), "macro_recall": round(summary["macro_recall"], 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu.ensemble", description=__doc__)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--member", type=Path, nargs="+", action="extend", required=True)
    parser.add_argument("--cache", type=Path, default=Path("runs/ensemble-logits.npz"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the choice and its figures here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    _, held_out = holdout(load_faces(args.train), 0.1)
    on_holdout = cached_logits(args.member, "holdout", held_out, args.cache, args.threads)
    chosen = greedy_selection({n: softmax(v) for n, v in on_holdout.items()}, held_out.labels)
    # PublicTest only now, and only for the chosen members: the choice cannot have looked at it
    test = load_faces(args.test)
    chosen_paths = [p for p in args.member if member_name(p) in chosen]
    on_test = cached_logits(chosen_paths, "test", test, args.cache, args.threads)
    result = {
        "views": "face + mirror",
        "members_holdout": {n: report([n], on_holdout, held_out.labels) for n in on_holdout},
        "chosen": chosen,
        "chosen_holdout": report(chosen, on_holdout, held_out.labels),
        "chosen_publictest": report(chosen, on_test, test.labels),
        "chosen_members_publictest": {n: report([n], on_test, test.labels) for n in on_test},
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
