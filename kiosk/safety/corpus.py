"""The labelled safety corpus: one sentence per line in ``corpus/safety/<split>/<category>.txt``.

The file name is the label, up to an optional ``-<batch>`` suffix (``gentle*.txt`` files are the sentences
that may reach a child), so a reviewer
reads and edits the corpus as plain text. The validation split is carved from ``train`` by a hash of the
sentence, so it never moves when sentences are added elsewhere; ``test`` is written apart from ``train`` by a
different author and is only ever used for the reported figures.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

GENTLE = "gentle"
UNSAFE_CATEGORIES: tuple[str, ...] = (
    "injury",
    "death",
    "abandonment",
    "strangers",
    "dangerous_acts",
    "scary",
    "humiliation",
    "sexual",
    "self_harm",
    "substances",
)
LABELS: tuple[str, ...] = (GENTLE, *UNSAFE_CATEGORIES)
CORPUS_DIR = Path(__file__).resolve().parents[2] / "corpus" / "safety"


@dataclass(frozen=True)
class Example:
    sentence: str
    label: str

    @property
    def unsafe(self) -> bool:
        return self.label != GENTLE


def label_of(path: Path) -> str:
    """``gentle-a.txt`` → gentle; ``self_harm.txt`` and ``self_harm-2.txt`` (a second writer's batch) → self_harm."""
    stem = path.stem.split("-")[0]
    if stem == GENTLE:
        return GENTLE
    if stem not in UNSAFE_CATEGORIES:
        raise ValueError(f"{path.name}: unknown category {stem!r} (known: {', '.join(LABELS)})")
    return stem


def read_split(split: str, corpus_dir: Path = CORPUS_DIR) -> list[Example]:
    """Every sentence of one split, deduplicated (case- and space-insensitive)."""
    folder = corpus_dir / split
    if not folder.is_dir():
        raise FileNotFoundError(f"no safety corpus split at {folder}")
    examples, seen = [], set()
    for path in sorted(folder.glob("*.txt")):
        label = label_of(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            sentence = line.strip()
            key = " ".join(sentence.lower().split())
            if not sentence or sentence.startswith("#") or key in seen:
                continue
            seen.add(key)
            examples.append(Example(sentence, label))
    logger.info("%s: %d sentences from %s", split, len(examples), folder)
    return examples


def in_validation(sentence: str, share: float = 0.15) -> bool:
    """Stable membership of the validation split, by a hash of the normalised sentence."""
    digest = hashlib.sha256(" ".join(sentence.lower().split()).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def train_validation(corpus_dir: Path = CORPUS_DIR, share: float = 0.15) -> tuple[list[Example], list[Example]]:
    examples = read_split("train", corpus_dir)
    validation = [e for e in examples if in_validation(e.sentence, share)]
    train = [e for e in examples if not in_validation(e.sentence, share)]
    return train, validation


def split_by_label(corpus_dir: Path = CORPUS_DIR) -> dict[str, dict[str, int]]:
    """Sentence counts per split and label, for the README and the model card."""
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "test"):
        try:
            examples = read_split(split, corpus_dir)
        except FileNotFoundError:
            continue
        counts[split] = {label: sum(e.label == label for e in examples) for label in LABELS}
    return counts
