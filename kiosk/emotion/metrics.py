"""Classification figures used by training, evaluation and the model card (pure numpy)."""

from __future__ import annotations

import itertools

import numpy as np

from kiosk.emotion.labels import EMOTIONS, NUM_CLASSES


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE over equal-width confidence bins (Guo et al., 2017)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def summarise(labels: np.ndarray, probs: np.ndarray) -> dict[str, object]:
    """Accuracy, macro recall, per-class recall, confusion and ECE of class probabilities."""
    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    support = matrix.sum(axis=1)
    recall = np.divide(np.diag(matrix), support, out=np.zeros(NUM_CLASSES), where=support > 0)
    return {
        "n": len(labels),
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "macro_recall": float(recall[support > 0].mean()) if support.any() else 0.0,
        "per_class_recall": {name: round(float(r), 4) for name, r in zip(EMOTIONS, recall, strict=True)},
        "confusion": matrix.tolist(),
        "ece": round(expected_calibration_error(probs, labels), 4),
    }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature that minimises the negative log-likelihood (golden-section search on log T)."""

    def nll(log_t: float) -> float:
        probs = softmax(logits, float(np.exp(log_t)))
        return float(-np.log(probs[np.arange(len(labels)), labels] + 1e-12).mean())

    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))
