"""Export a trained checkpoint to ONNX (dynamic batch), check parity with PyTorch, write the manifest.

Calibration: a temperature is fitted on the same stratified holdout of Training that chose the best epoch
(``--val-from-train``) and stored in the manifest, so the runtime's probabilities mean what they say. The
split the figures are reported on (``--test``, PublicTest) is only measured: accuracy, ECE before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from kiosk.emotion import architectures, metrics, plots
from kiosk.emotion.data import HOLDOUT_SEED, holdout, load_faces
from kiosk.emotion.labels import EMOTIONS
from kiosk.emotion.train import NormalisedNet, predict_logits
from kiosk.modelstore.manifest import Manifest, file_entry, write_manifest

logger = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
PARITY_TOLERANCE = 1e-3


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    model.eval()
    example = torch.rand(2, 1, 48, 48)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["pixels"],
        output_names=["logits"],
        dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def onnx_emotion_manifest(model_dir: Path, name: str, version: str, source: str, licence: str, **fields) -> Manifest:
    """The manifest of an emotion model directory holding ``model.onnx``: FER2013 labels, grey pixel input."""
    return Manifest(
        name=name,
        version=version,
        task="emotion",
        backend="onnx",
        files=[file_entry(model_dir, ONNX_NAME)],
        source=source,
        licence=licence,
        inputs={"name": "pixels", "shape": [-1, 1, 48, 48], "dtype": "float32", "scale": "grey / 255"},
        labels=list(EMOTIONS),
        **fields,
    )


def parity_error(model: torch.nn.Module, onnx_path: Path, pixels: np.ndarray) -> float:
    """Largest absolute logit difference between PyTorch and ONNX Runtime on ``pixels``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(pixels)).numpy()
    actual = session.run(None, {"pixels": pixels})[0]
    return float(np.abs(expected - actual).max())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk emotion export", description=__doc__)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        nargs="+",
        help="best.pt from kiosk emotion train; several: one graph that averages their logits (an ensemble)",
    )
    parser.add_argument(
        "--train", type=Path, required=True, help="the training data: its holdout calibrates; data hygiene; the card"
    )
    parser.add_argument(
        "--val-from-train",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="the stratified share of --train held out for calibration (the same holdout training chose on)",
    )
    parser.add_argument(
        "--test", "--val", dest="test", type=Path, required=True, help="data the figures are reported on (PublicTest)"
    )
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--name", default="kiosk-compact-cnn")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--source", default="trained by `kiosk emotion train` on FER2013 Training")
    parser.add_argument("--no-card", action="store_true", help="skip the evaluation and the model card")
    parser.add_argument(
        "--tensorrt-cache", type=Path, help="also build the FP16 TensorRT engine here (needs tensorrt and a GPU)"
    )
    return parser


class Ensemble(torch.nn.Module):
    """Networks trained apart (other seeds), served as one graph: the mean of their logits."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(pixels) for member in self.members]).mean(0)


def load_checkpoints(paths: list[Path]) -> torch.nn.Module:
    """One network, or an ensemble of several."""
    members = []
    for path in paths:
        state = torch.load(path, weights_only=False, map_location="cpu")
        member = NormalisedNet(architectures.build(state["arch"]))
        member.load_state_dict(state["model"])
        members.append(member.eval())
    model = members[0] if len(members) == 1 else Ensemble(members)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = load_checkpoints(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / ONNX_NAME
    export_onnx(model, onnx_path)

    _, held_out = holdout(load_faces(args.train), args.val_from_train)
    test = load_faces(args.test)
    pixels = (held_out.images[:256].astype(np.float32) / 255.0)[:, None]
    error = parity_error(model, onnx_path, pixels)
    if error > PARITY_TOLERANCE:
        raise SystemExit(f"ONNX parity check failed: max |Δlogit| = {error:.2e} > {PARITY_TOLERANCE}")
    logger.info("ONNX parity: max |Δlogit| = %.2e", error)

    temperature = metrics.fit_temperature(predict_logits(model, held_out.images), held_out.labels)
    logits = predict_logits(model, test.images)
    raw = metrics.summarise(test.labels, metrics.softmax(logits))
    calibrated = metrics.summarise(test.labels, metrics.softmax(logits, temperature))
    calibration = f"Training holdout {args.val_from_train:.0%} ({len(held_out)} faces, seed {HOLDOUT_SEED})"
    manifest = onnx_emotion_manifest(
        args.out,
        name=args.name,
        version=args.version,
        source=args.source,
        licence="model weights: MIT (this project); trained on FER2013 (research use)",
        metrics={
            "publictest_accuracy": round(raw["accuracy"], 4),
            "publictest_macro_recall": round(raw["macro_recall"], 4),
            "publictest_ece_raw": raw["ece"],
            "publictest_ece_calibrated": calibrated["ece"],
            "parameters": architectures.parameter_count(model),
            "onnx_parity_max_abs": float(f"{error:.2e}"),
            "calibration": calibration,
        },
        calibration_temperature=round(temperature, 4),
    )
    write_manifest(args.out, manifest)
    if not args.no_card:
        write_model_card(args, manifest)
    if args.tensorrt_cache is not None:
        build_tensorrt_engine(onnx_path, args.tensorrt_cache)
    print(json.dumps(manifest.metrics | {"temperature": manifest.calibration_temperature}))
    return 0


def build_tensorrt_engine(onnx_path: Path, cache_dir: Path) -> Path | None:
    """The FP16 engine for this GPU in the engine cache, or a logged reason why it cannot be built here."""
    from kiosk.emotion.tensorrt_engine import cached_engine, tensorrt_ready

    if reason := tensorrt_ready():
        logger.warning("no TensorRT engine: %s (ONNX Runtime serves the model)", reason)
        return None
    return cached_engine(onnx_path, cache_dir)


def member_summary(run_dir: Path) -> dict:
    """What the card says of one ensemble member: its run's summary and training arguments."""
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    last = (
        torch.load(run_dir / "last.pt", weights_only=False, map_location="cpu")
        if (run_dir / "last.pt").exists()
        else {}
    )
    return {
        "run": run_dir.name,
        "arch": summary.get("arch"),
        "accuracy": summary.get("accuracy"),
        "best_epoch": summary.get("best_epoch"),
        "train_seconds": summary.get("train_seconds", 0),
        "seed": last.get("args", {}).get("seed"),
        "epochs": last.get("args", {}).get("epochs"),
    }


def write_model_card(args: argparse.Namespace, manifest: Manifest) -> None:
    """Evaluate the exported model as the kiosk serves it, then write MODEL_CARD.md and copy the plots."""
    import shutil

    from kiosk.emotion.card import write_card
    from kiosk.emotion.evaluate import evaluate
    from kiosk.emotion.hygiene import duplicates

    run_dirs = [path.parent for path in args.checkpoint]
    run_dir = run_dirs[0]
    plain = evaluate(args.out, args.test, False, ["onnxruntime-cpu"], exclude_copies_of=args.train)
    tta = evaluate(args.out, args.test, True, ["onnxruntime-cpu"], exclude_copies_of=args.train)
    hygiene = duplicates(load_faces(args.train).images, load_faces(args.test).images)
    hygiene.pop("all_near_indices")
    training = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    if len(run_dirs) > 1:
        training["members"] = [member_summary(d) for d in run_dirs]
        training["parameters"] = architectures.parameter_count(load_checkpoints(args.checkpoint))
        training["arch"] = " + ".join(str(m["arch"]) for m in training["members"])
        training["train_seconds"] = sum(m.get("train_seconds", 0) for m in training["members"])
    last = (
        torch.load(run_dir / "last.pt", weights_only=False, map_location="cpu")
        if (run_dir / "last.pt").exists()
        else {}
    )
    training["args"] = last.get("args", {})
    history = last.get("history", [])
    for index, member_dir in enumerate(run_dirs):  # each member's training curves
        if (member_dir / "curves.png").exists():
            shutil.copyfile(
                member_dir / "curves.png", args.out / ("curves.png" if index == 0 else f"curves-{index + 1}.png")
            )
    # the confusion matrix of the model as served (the ensemble, not one member)
    plots.confusion(
        np.array(plain["confusion"]),
        args.out / "confusion.png",
        title=f"{manifest.name} {manifest.version}: PublicTest accuracy {plain['accuracy']:.3f}",
    )
    write_card(args.out, manifest, plain, tta, training, hygiene, history)
