"""The model card written beside an exported emotion model, from figures measured at export time."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from kiosk.emotion.labels import EMOTIONS


def _row(report: dict) -> str:
    clean = report.get("without_training_copies", {})
    return (
        f"| {'yes' if report['tta'] else 'no'} | {report['accuracy']:.2%} | {report['macro_recall']:.2%} | "
        f"{clean.get('accuracy', float('nan')):.2%} | {report['ece_15_bins']['uncalibrated']:.3f} → "
        f"{report['ece_15_bins']['calibrated']:.3f} | {report['ms_per_face']:.2f} ms |"
    )


def _members(members: list[dict]) -> str:
    """The ensemble line of the card (empty for a single network)."""
    if not members:
        return ""
    listed = "; ".join(
        f"{m['run']} (seed {m['seed']}, {m['epochs']} epochs, best epoch {m['best_epoch']},"
        f" {m['accuracy']:.2%} alone, {m['train_seconds'] / 60:.0f} min)"
        for m in members
    )
    return (
        f"- Ensemble of {len(members)} such networks trained apart with other seeds, served as one graph that"
        f" averages their logits: {listed}.\n"
    )


def write_card(
    model_dir: Path, manifest, plain: dict, tta: dict, training: dict, hygiene: dict, history: list[dict]
) -> Path:
    args = training.get("args", {})
    recall = " | ".join(f"{plain['per_class_recall'][e]:.0%}" for e in EMOTIONS)
    command = (
        f"kiosk emotion train --train fer2013_training.npz --val fer2013_publictest.npz --arch {args.get('arch')} "
        f"--epochs {args.get('epochs')} --batch-size {args.get('batch_size')} --lr {args.get('lr')} "
        f"--weight-decay {args.get('weight_decay')} --label-smoothing {args.get('label_smoothing')} "
        f"--class-weight-power {args.get('class_weight_power')} --seed {args.get('seed')} --threads "
        f"{args.get('threads')}"
    )
    for number, member in enumerate(training.get("members", [])[1:], start=2):
        command += f"; member {number}: the same with --epochs {member['epochs']} --seed {member['seed']}"
    best = max(history, key=lambda row: row["val_accuracy"]) if history else {}
    onnx_mb = (model_dir / "model.onnx").stat().st_size / 1e6
    clean_faces = hygiene["test_faces"] - hygiene["near"]
    table_header = (
        f"| TTA | accuracy | macro recall | accuracy without Training copies ({clean_faces} faces) "
        "| ECE (15 bins) raw → calibrated | latency, 1 face, 1 thread |"
    )
    text = f"""# {manifest.name} {manifest.version}

The kiosk's default facial-emotion model: 7 FER2013 classes ({", ".join(EMOTIONS)}) from a 48×48 grey
face. Served by ONNX Runtime (TensorRT where available); probabilities calibrated by temperature scaling.

## Figures (FER2013 PublicTest, {plain["n"]} faces, measured by `kiosk emotion eval` at export)

{table_header}
| --- | --- | --- | --- | --- | --- |
{_row(plain)}
{_row(tta)}

Per-class recall (no TTA):

| {" | ".join(EMOTIONS)} |
| {" | ".join("---" for _ in EMOTIONS)} |
| {recall} |

The kiosk serves it with TTA (`emotion.tta`, on by default): the 10 views go through the runtime in one call,
inside the 20 ms budget on one thread, and a visit classifies one face, so the child never waits for it. With
`emotion.tta = false` it costs a tenth of the latency for the figures of the first row. Calibration temperature:
{manifest.calibration_temperature} (fitted on PublicTest by negative log-likelihood). A face whose calibrated
confidence is below `emotion.unsure_below` (0.40) gets a gentle neutral story instead.

## Data hygiene

PublicTest faces with a copy in Training: {hygiene["exact"]} exact, {hygiene["near"]} near (dHash within
{hygiene["near_bits"]} bits, exact included). They inflate a PublicTest figure for any model trained on
Training, so the table also gives the accuracy on the {hygiene["test_faces"] - hygiene["near"]} faces without
a copy. Model selection (best epoch) used PublicTest only; PrivateTest was never seen.

## Model

- Architecture: `{training.get("arch")}` ({training.get("parameters")} parameters): 4 stages of 3×3 conv + batch
  norm + ReLU (32, 64, 128, 256 channels; two convs from stage 2), max-pool, global average pool, dropout 0.3,
  linear. Input: grey pixels / 255 (normalisation is inside the graph). ONNX opset 17, dynamic batch.
{_members(training.get("members", []))}- Files: `model.onnx` ({onnx_mb:.1f} MB), sha256 in `manifest.json`.
- ONNX parity with PyTorch: max |Δlogit| = {manifest.metrics.get("onnx_parity_max_abs")}.

## Training

- Data: FER2013 Training (28,709 faces); validation and model selection on PublicTest (3,589).
- Recipe: SGD with Nesterov momentum {args.get("momentum")}, lr {args.get("lr")}, weight decay
  {args.get("weight_decay")}, batch {args.get("batch_size")}, {args.get("warmup_epochs")} warm-up epoch then cosine
  decay over {args.get("epochs")} epochs; label smoothing {args.get("label_smoothing")}; class-weighted loss
  (weight ∝ (1/frequency)^{args.get("class_weight_power")}, for `disgust`); augmentation: random affine (±10°,
  0.9–1.1 scale, ±4 px), horizontal flip, random erasing (p = {args.get("erase_prob")}). Seed {args.get("seed")}.
- Best epoch{" of the first member" if training.get("members") else ""}: {training.get("best_epoch")} (PublicTest
  accuracy {best.get("val_accuracy", 0):.2%} during training).
- Time and hardware: {training.get("train_seconds", 0) / 60:.0f} minutes on a 2-core CPU
  ({platform.machine()}), {args.get("threads")} torch threads, shared with other work running at the same time.
- Command: `{command}`, then `kiosk emotion export`.
- Curves and confusion matrix: `curves.png` (`curves-2.png`, … for further ensemble members) and
  `confusion.png` (the served model on PublicTest) beside this card.

## Limits

FER2013 holds mostly adult faces from web images; children's expressions, lighting at the kiosk and
faces partly turned away will be recognised less well than these figures say. The kiosk therefore treats
the result gently: an unsure face gets a neutral story, and no story ever names the detected emotion as
a judgement of the child.

Licence: weights MIT (this project); trained on FER2013 (research use).
"""
    path = model_dir / "MODEL_CARD.md"
    path.write_text(text)
    (model_dir / "eval.json").write_text(json.dumps({"plain": plain, "tta": tta, "hygiene": hygiene}, indent=1))
    return path
