"""The seven FER2013 emotion classes, in the data set's label order."""

from __future__ import annotations

from typing import Literal

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

Emotion = Literal["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]

NUM_CLASSES = len(EMOTIONS)
