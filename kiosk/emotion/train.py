"""Training recipe for the emotion network (after torchvision's classification reference).

One parser, ``train_one_epoch`` and ``evaluate``, metrics per epoch, checkpoints with optimizer and
scheduler state, resume. Augmentation runs batched on tensors (affine jitter, flips, erasing) because
per-image PIL transforms cost more than the network itself at 48×48 on a CPU.

The best epoch is chosen on a stratified holdout of Training (``--val-from-train``, 10% by default, one fixed
seed), never on the split the figures are reported on: PublicTest (``--test``) is only evaluated, for the
curves and the summary. The summary records the machine the run trained on, read from the machine itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from kiosk.emotion import architectures, metrics, plots
from kiosk.emotion.data import HOLDOUT_SEED, FaceSet, holdout, load_faces
from kiosk.emotion.labels import NUM_CLASSES

logger = logging.getLogger(__name__)

PIXEL_MEAN = 0.5
PIXEL_STD = 0.25


class NormalisedNet(nn.Module):
    """Wraps a network so that it takes grey pixels scaled to [0, 1], as the runtime feeds them."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((pixels - PIXEL_MEAN) / PIXEL_STD)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk emotion train", description=__doc__)
    parser.add_argument(
        "--train", type=Path, required=True, help="training data: npz, fer2013.csv[:Training] or image folder"
    )
    parser.add_argument(
        "--val-from-train",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="hold this stratified share of --train out (fixed seed) to choose the best epoch on",
    )
    parser.add_argument(
        "--test",
        "--val",
        dest="test",
        type=Path,
        help="data the figures are reported on (PublicTest): evaluated each epoch, never used to choose",
    )
    parser.add_argument("--arch", default="compact", choices=sorted(architectures.ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="time budget: after the first epoch, train only as many epochs (≤ --epochs) as fit in it, the "
        "learning-rate decay shortened to match (for a lent GPU's minutes); 0 trains --epochs",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument(
        "--class-weight-power",
        type=float,
        default=0.5,
        help="loss weight ∝ (1/class frequency)^power; 0 disables (helps 'disgust')",
    )
    parser.add_argument("--warmup-epochs", type=float, default=1.0)
    parser.add_argument("--erase-prob", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps the default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training faces")
    parser.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, plots)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda or auto (cuda when present): on a GPU the whole data set is held on it, bf16 autocast",
    )
    return parser


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1)


def draw_augmentation(n: int, generator: torch.Generator, side: int, erase_prob: float) -> dict[str, torch.Tensor]:
    """The random numbers of ``n`` augmentations, drawn from a CPU generator (reproducible on any device).

    An epoch draws all of its numbers at once and moves them to the device in one copy: a copy per step from
    host memory would make a GPU wait for the host at every batch.
    """
    size = torch.randint(8, 20, (n, 2), generator=generator)
    return {
        "angle": (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10),
        "scale": 0.9 + torch.rand(n, generator=generator) * 0.2,
        "shift": (torch.rand(n, 2, generator=generator) * 2 - 1) * (4 / 24),
        "flip": torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0),
        "erase": torch.rand(n, generator=generator) < erase_prob,
        "size": size,
        "corner": (torch.rand(n, 2, generator=generator) * (side - size)).long(),
        "fill": torch.rand(n, generator=generator),
    }


def augment(batch: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Random affine (±10°, 0.9–1.1 scale, ±4 px shift), horizontal flip and random erasing, all batched.

    ``params`` comes from :func:`draw_augmentation`, already on the batch's device.
    """
    side = batch.shape[-1]
    angle, scale, shift, flip = params["angle"], params["scale"], params["shift"], params["flip"]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    ).to(batch.dtype)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, padding_mode="border", align_corners=False)
    # random erasing: one rectangle of 8–19 px sides filled with a random grey, on a share of the faces
    size, corner = params["size"], params["corner"]
    rows = torch.arange(side, device=batch.device)[None, :, None]
    cols = torch.arange(side, device=batch.device)[None, None, :]
    inside = (
        (rows >= corner[:, 0, None, None])
        & (rows < (corner[:, 0] + size[:, 0])[:, None, None])
        & (cols >= corner[:, 1, None, None])
        & (cols < (corner[:, 1] + size[:, 1])[:, None, None])
        & params["erase"][:, None, None]
    )
    return torch.where(inside[:, None], params["fill"].to(batch.dtype)[:, None, None, None], out)


def class_weights(faces: FaceSet, power: float) -> torch.Tensor:
    counts = faces.class_counts().astype(np.float64).clip(min=1)
    weights = (counts.sum() / counts) ** power
    return torch.tensor(weights / weights.mean() if power else np.ones(NUM_CLASSES), dtype=torch.float32)


def make_scheduler(optimizer: torch.optim.Optimizer, plan: dict[str, int]):
    """Linear warm-up, then cosine decay to zero at ``plan["total_steps"]``, read at every step: a run with a
    time budget learns after its first epoch how many epochs fit, and the decay then ends with its last one."""

    def factor(step: int) -> float:
        warmup_steps, total_steps = plan["warmup_steps"], plan["total_steps"]
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def epochs_that_fit(minutes: float, epoch_seconds: float, most: int, done: int = 0, elapsed: float = 0.0) -> int:
    """How many epochs in all fit in ``minutes``: those ``done`` in ``elapsed`` seconds and as many more of
    ``epoch_seconds`` as the rest of the budget holds (at least the ones done, at most ``most``)."""
    more = int(max(0.0, minutes * 60 - elapsed) // max(epoch_seconds, 1e-6))
    return max(1, done, min(most, done + more))


PLAN_EPOCHS = 5  # a time budget's epoch count is settled over the first epochs (the first one runs cuDNN's search)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_one_epoch(model, criterion, optimizer, scheduler, faces, args, generator, epoch, epochs) -> dict:
    model.train()
    device = model_device(model)
    order = torch.randperm(len(faces), generator=generator)
    params = draw_augmentation(len(order), generator, faces.images.shape[-1], args.erase_prob)
    order, params = order.to(device), {name: value.to(device) for name, value in params.items()}
    images, labels = to_tensor(faces.images).to(device), torch.from_numpy(faces.labels).to(device)
    total_loss, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    steps = range(0, len(order) - args.batch_size + 1, args.batch_size)
    bar = tqdm(steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False, mininterval=1.0)
    for start in bar:
        idx = order[start : start + args.batch_size]
        batch = augment(images[idx], {name: value[start : start + len(idx)] for name, value in params.items()})
        if device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        target = labels[idx]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(batch)
            loss = criterion(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach() * len(idx)
        correct += (logits.argmax(1) == target).sum()
        seen += len(idx)
        if device.type == "cpu":  # on a GPU reading these every step would stall it
            bar.set_postfix(loss=f"{total_loss.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}")
    return {"train_loss": total_loss.item() / seen, "train_accuracy": correct.item() / seen}


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    model.eval()
    device = model_device(model)
    chunks = [
        model(to_tensor(images[i : i + batch_size]).to(device)).float().cpu() for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, NUM_CLASSES), np.float32)


def evaluate(model: nn.Module, faces: FaceSet) -> tuple[dict, np.ndarray]:
    logits = predict_logits(model, faces.images)
    return metrics.summarise(faces.labels, metrics.softmax(logits)), logits


def training_machine() -> dict:
    """What this run trains on, read from the machine (the model card says it; nobody types it)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus": cpus,
        "cpu_model": model or platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    train_set, val_set = holdout(load_faces(args.train), args.val_from_train)
    test_set = load_faces(args.test) if args.test else None
    logger.info("best epoch chosen on %d held-out Training faces (%.0f%%)", len(val_set), 100 * args.val_from_train)
    if args.limit:
        train_set = FaceSet(train_set.images[: args.limit], train_set.labels[: args.limit])

    device = pick_device(args.device)
    model = NormalisedNet(architectures.build(args.arch)).to(device)
    if device.type == "cuda":  # cuDNN's fastest convolutions for these fixed shapes, in NHWC for bf16
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    logger.info("%s: %d parameters, training on %s", args.arch, architectures.parameter_count(model), device)
    criterion = nn.CrossEntropyLoss(
        weight=class_weights(train_set, args.class_weight_power).to(device), label_smoothing=args.label_smoothing
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=True, weight_decay=args.weight_decay
    )
    steps_per_epoch = len(train_set) // args.batch_size
    plan = {"epochs": args.epochs, "total_steps": args.epochs * steps_per_epoch}
    plan["warmup_steps"] = int(args.warmup_epochs * steps_per_epoch)
    scheduler = make_scheduler(optimizer, plan)
    generator = torch.Generator().manual_seed(args.seed)
    history: list[dict] = []
    start_epoch, best_accuracy = 0, -1.0
    last_path, best_path = args.out / "last.pt", args.out / "best.pt"
    if args.resume and last_path.exists():
        state = torch.load(last_path, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"].cpu())
        start_epoch, history, best_accuracy = state["epoch"] + 1, state["history"], state["best_accuracy"]
        if args.minutes:  # the epochs the budget fitted, not --epochs again
            plan.update(state.get("plan", {}))
        logger.info("resumed at epoch %d (best %.4f)", start_epoch + 1, best_accuracy)

    started = time.perf_counter()
    epoch = start_epoch
    while epoch < plan["epochs"]:
        epoch_start = time.perf_counter()
        row = train_one_epoch(model, criterion, optimizer, scheduler, train_set, args, generator, epoch, plan["epochs"])
        summary, _ = evaluate(model, val_set)
        row.update(
            epoch=epoch + 1,
            selection="Training holdout",
            val_accuracy=summary["accuracy"],
            val_macro_recall=summary["macro_recall"],
        )
        if test_set is not None:  # reported, never chosen on
            row["test_accuracy"] = evaluate(model, test_set)[0]["accuracy"]
        row["seconds"] = round(time.perf_counter() - epoch_start, 1)
        history.append(row)
        if args.minutes and start_epoch == 0 and epoch < PLAN_EPOCHS:
            typical = float(np.median([r["seconds"] for r in history[1:]] or [row["seconds"]]))
            elapsed = time.perf_counter() - started
            plan["epochs"] = epochs_that_fit(args.minutes, typical, args.epochs, epoch + 1, elapsed)
            plan["total_steps"] = plan["epochs"] * steps_per_epoch
            logger.info("%.1f s per epoch: %d epochs fit in %.1f minutes", typical, plan["epochs"], args.minutes)
        logger.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 4) for k, v in row.items() if k != "selection"}))
        if summary["accuracy"] > best_accuracy:
            best_accuracy = summary["accuracy"]
            save_checkpoint(best_path, model=model.state_dict(), arch=args.arch, epoch=epoch, summary=summary)
        save_checkpoint(
            last_path,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            generator=generator.get_state(),
            epoch=epoch,
            history=history,
            best_accuracy=best_accuracy,
            plan=plan,
            args=vars(args)
            | {"epochs": plan["epochs"]}
            | {"train": str(args.train), "test": str(args.test), "out": str(args.out)},
        )
        (args.out / "history.json").write_text(json.dumps(history, indent=1))
        plots.training_curves(history, args.out / "curves.png")
        epoch += 1

    best = torch.load(best_path, weights_only=False, map_location=device)
    model.load_state_dict(best["model"])
    chosen_on, _ = evaluate(model, val_set)
    summary, _ = evaluate(model, test_set) if test_set is not None else (chosen_on, None)
    reported_on = args.test.name if args.test else "the Training holdout"
    plots.confusion(
        np.array(summary["confusion"]),
        args.out / "confusion.png",
        title=f"{args.arch} on {reported_on}: accuracy {summary['accuracy']:.3f}",
    )
    report = {
        "arch": args.arch,
        "best_epoch": best["epoch"] + 1,
        "epochs": plan["epochs"],
        "train_seconds": round(time.perf_counter() - started, 1),
        "parameters": architectures.parameter_count(model),
        "machine": training_machine(),
        "selection": {
            "split": "Training holdout",
            "fraction": args.val_from_train,
            "seed": HOLDOUT_SEED,
            "faces": len(val_set),
            "accuracy": chosen_on["accuracy"],
        },
        "reported_on": reported_on,
    } | summary
    (args.out / "summary.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "confusion"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
