"""Training curves and confusion matrix as PNG, for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from kiosk.emotion.labels import EMOTIONS


def training_curves(history: list[dict], path: Path) -> None:
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [row["train_loss"] for row in history], label="train loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.legend()
    acc_ax.plot(epochs, [row["train_accuracy"] for row in history], label="train accuracy (augmented)")
    # runs before the Training holdout (1.1.0) chose on PublicTest and recorded it as val_*
    chosen_on = history[0].get("selection", "PublicTest")
    acc_ax.plot(epochs, [row["val_accuracy"] for row in history], label=f"{chosen_on} accuracy (chooses the epoch)")
    acc_ax.plot(epochs, [row["val_macro_recall"] for row in history], label=f"{chosen_on} macro recall")
    if "test_accuracy" in history[0]:
        acc_ax.plot(epochs, [row["test_accuracy"] for row in history], "--", label="PublicTest accuracy (reported)")
    acc_ax.set_xlabel("epoch")
    acc_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    rows = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(
                j,
                i,
                f"{rows[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if rows[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
