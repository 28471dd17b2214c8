"""The model card written beside an exported emotion model.

Its figures (the table, per-class recall, calibration, data hygiene) are generated from ``eval.json`` — what
the export measured with the same code as ``kiosk emotion eval`` — and from ``manifest.json``; nobody types
them. ``python -m kiosk.emotion.card MODEL_DIR`` writes them again into an existing card (``--check`` only
compares), and a test holds the shipped card to its ``eval.json``. The README's figures sentence comes from
the same file (``--readme`` prints it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kiosk.emotion.labels import EMOTIONS
from kiosk.modelstore.manifest import Manifest, load_manifest

CARD = "MODEL_CARD.md"
EVAL = "eval.json"
FIGURES_START = "<!-- figures: generated from eval.json and manifest.json by `python -m kiosk.emotion.card` -->"
FIGURES_END = "<!-- end of generated figures -->"


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


def figures_markdown(manifest: Manifest, evaluation: dict) -> str:
    """The card's generated part, markers included: every number in it comes from ``evaluation`` or the manifest."""
    plain, tta, hygiene = evaluation["plain"], evaluation["tta"], evaluation["hygiene"]
    recall = " | ".join(f"{plain['per_class_recall'][e]:.0%}" for e in EMOTIONS)
    clean_faces = hygiene["test_faces"] - hygiene["near"]
    calibration = manifest.metrics.get("calibration")
    if calibration:
        fitted = f"fitted on the {calibration}\nby negative log-likelihood"
        chosen = "Model selection (best epoch) and calibration used\nthe Training holdout; PublicTest was only measured"
    else:
        fitted = (
            "fitted on PublicTest by negative log-likelihood:\nthis version's best epoch and temperature were chosen"
            " on PublicTest, the split of these figures, which\nflatters them a little; the next training chooses"
            " both on a held-out part of Training"
        )
        chosen = "Model selection (best epoch) and\ncalibration used PublicTest"
    return f"""{FIGURES_START}
## Figures (FER2013 PublicTest, {plain["n"]} faces, measured by `kiosk emotion eval` at export)

| TTA | accuracy | macro recall | accuracy without Training copies ({clean_faces} faces) \
| ECE (15 bins) raw → calibrated | latency, 1 face, 1 thread |
| --- | --- | --- | --- | --- | --- |
{_row(plain)}
{_row(tta)}

Per-class recall (no TTA):

| {" | ".join(EMOTIONS)} |
| {" | ".join("---" for _ in EMOTIONS)} |
| {recall} |

The kiosk serves it with TTA (`emotion.tta`, on by default): the 10 views go through the runtime in one call,
and a visit classifies one face, so the child never waits for it. With `emotion.tta = false` it costs a tenth
of the latency for the figures of the first row. Calibration temperature: {manifest.calibration_temperature}
({fitted}).
A face whose calibrated confidence is below `emotion.unsure_below` (0.40) gets a gentle neutral story instead.

## Data hygiene

PublicTest faces with a copy in Training: {hygiene["exact"]} exact, {hygiene["near"]} near (dHash within
{hygiene["near_bits"]} bits, exact included). They inflate a PublicTest figure for any model trained on
Training, so the table also gives the accuracy on the {clean_faces} faces without a copy. {chosen};
PrivateTest was never seen.
{FIGURES_END}"""


def readme_sentence(evaluation: dict) -> str:
    """The README's figures for the shipped model, from the same ``eval.json`` as the card."""
    plain, tta = evaluation["plain"], evaluation["tta"]
    return (
        f"{tta['accuracy']:.1%} PublicTest accuracy, {tta['macro_recall']:.1%} macro recall, "
        f"{tta['ms_per_face']:.1f} ms per face on one CPU thread (without TTA: {plain['accuracy']:.1%}, "
        f"{plain['ms_per_face']:.1f} ms)"
    )


def _hardware(training: dict) -> str:
    machine = training.get("machine")
    if not machine:
        return "a machine the run did not record"
    gpu = f" and a {machine['gpu']}" if machine.get("gpu") else ""
    return f"{machine['cpus']} CPU cores ({machine['cpu_model']}){gpu}, {machine['platform']}"


def _selection(training: dict) -> str:
    selection = training.get("selection")
    if not selection:
        return "validation and model selection on PublicTest (3,589)"
    return (
        f"best epoch chosen on a stratified {selection['fraction']:.0%} holdout of Training ({selection['faces']}"
        f" faces, seed {selection['seed']}), taken out of training; PublicTest only measured"
    )


def write_card(
    model_dir: Path, manifest, plain: dict, tta: dict, training: dict, hygiene: dict, history: list[dict]
) -> Path:
    """``eval.json`` first, then the card whose figures are generated from it."""
    evaluation = {"plain": plain, "tta": tta, "hygiene": hygiene}
    (model_dir / EVAL).write_text(json.dumps(evaluation, indent=1))
    args = training.get("args", {})
    command = (
        f"kiosk emotion train --train fer2013_training.npz --test fer2013_publictest.npz --val-from-train "
        f"{args.get('val_from_train')} --arch {args.get('arch')} --epochs {args.get('epochs')} --batch-size "
        f"{args.get('batch_size')} --lr {args.get('lr')} --weight-decay {args.get('weight_decay')} --label-smoothing "
        f"{args.get('label_smoothing')} --class-weight-power {args.get('class_weight_power')} --seed {args.get('seed')}"
        f" --threads {args.get('threads')}"
    )
    for number, member in enumerate(training.get("members", [])[1:], start=2):
        command += f"; member {number}: the same with --epochs {member['epochs']} --seed {member['seed']}"
    best = max(history, key=lambda row: row["val_accuracy"]) if history else {}
    onnx_mb = (model_dir / "model.onnx").stat().st_size / 1e6
    text = f"""# {manifest.name} {manifest.version}

The kiosk's default facial-emotion model: 7 FER2013 classes ({", ".join(EMOTIONS)}) from a 48×48 grey
face. Served by ONNX Runtime (TensorRT where available); probabilities calibrated by temperature scaling.

{figures_markdown(manifest, evaluation)}

## Model

- Architecture: `{training.get("arch")}` ({training.get("parameters")} parameters): 4 stages of 3×3 conv + batch
  norm + ReLU (32, 64, 128, 256 channels; two convs from stage 2), max-pool, global average pool, dropout 0.3,
  linear. Input: grey pixels / 255 (normalisation is inside the graph). ONNX opset 17, dynamic batch.
{_members(training.get("members", []))}- Files: `model.onnx` ({onnx_mb:.1f} MB), sha256 in `manifest.json`.
- ONNX parity with PyTorch: max |Δlogit| = {manifest.metrics.get("onnx_parity_max_abs")}.

## Training

- Data: FER2013 Training; {_selection(training)}.
- Recipe: SGD with Nesterov momentum {args.get("momentum")}, lr {args.get("lr")}, weight decay
  {args.get("weight_decay")}, batch {args.get("batch_size")}, {args.get("warmup_epochs")} warm-up epoch then cosine
  decay over {args.get("epochs")} epochs; label smoothing {args.get("label_smoothing")}; class-weighted loss
  (weight ∝ (1/frequency)^{args.get("class_weight_power")}, for `disgust`); augmentation: random affine (±10°,
  0.9–1.1 scale, ±4 px), horizontal flip, random erasing (p = {args.get("erase_prob")}). Seed {args.get("seed")}.
- Best epoch{" of the first member" if training.get("members") else ""}: {training.get("best_epoch")} (accuracy
  {best.get("val_accuracy", 0):.2%} on the split it was chosen on).
- Time and hardware: {training.get("train_seconds", 0) / 60:.0f} minutes on {_hardware(training)};
  {args.get("threads")} torch threads.
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
    path = model_dir / CARD
    path.write_text(text)
    return path


def card_with_figures(model_dir: Path) -> tuple[str, str]:
    """(the card as it is, the card with its figures generated again from eval.json and the manifest)."""
    card = (model_dir / CARD).read_text()
    start, end = card.find(FIGURES_START), card.find(FIGURES_END)
    if start < 0 or end < start:
        raise ValueError(f"{model_dir / CARD} has no generated figures block ({FIGURES_START})")
    evaluation = json.loads((model_dir / EVAL).read_text())
    figures = figures_markdown(load_manifest(model_dir, verify=False), evaluation)
    return card, card[:start] + figures + card[end + len(FIGURES_END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.emotion.card", description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--check", action="store_true", help="only compare: exit 1 if the card's figures differ")
    parser.add_argument("--readme", action="store_true", help="print the README's figures sentence")
    args = parser.parse_args(argv)
    if args.readme:
        print(readme_sentence(json.loads((args.model_dir / EVAL).read_text())))
        return 0
    card, generated = card_with_figures(args.model_dir)
    if args.check:
        if card != generated:
            print(f"{args.model_dir / CARD}: figures differ from {EVAL}", file=sys.stderr)
            return 1
        return 0
    (args.model_dir / CARD).write_text(generated)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
