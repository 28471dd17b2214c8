"""The labelled safety corpus: one sentence per line in ``corpus/safety/<split>/<category>.txt``.

The file name is the label, up to an optional ``-<batch>`` suffix (``gentle*.txt`` files are the sentences
that may reach a child), so a reviewer reads and edits the corpus as plain text. ``validation`` (the split
the threshold is chosen on) is written apart from ``train`` by its own writer, so the threshold meets
sentences phrased unlike the ones the classifier learned from, as it will in use; without that folder it is
carved from ``train`` by a hash of the sentence. ``test`` is written apart from both by a different author
and is only ever used for the reported figures.

Besides ``train/``, the classifier learns that the kiosk's own comfort register is gentle: sentences of the
team's comfort scenes (``corpus/comfort``) and of the template's beats, which are what the storyteller is
tuned to write. Without them a yucky-feeling opening ("stepped into squelchy mud and felt icky and
disgusted") read as humiliation and the disgust stories fell back to the template.
"""

from __future__ import annotations

import hashlib
import json
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
COMFORT_DIR = CORPUS_DIR.parent / "comfort"
COMFORT_SENTENCES = 1500  # at most, drawn by hash: the register, not a flood that outweighs the writers' gentle lines


@dataclass(frozen=True)
class Example:
    sentence: str
    label: str

    @property
    def unsafe(self) -> bool:
        return self.label != GENTLE


def normalised(sentence: str) -> str:
    """Case- and space-insensitive form: two writers' identical lines are one sentence."""
    return " ".join(sentence.lower().split())


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
            key = normalised(sentence)
            if not sentence or sentence.startswith("#") or key in seen:
                continue
            seen.add(key)
            examples.append(Example(sentence, label))
    logger.info("%s: %d sentences from %s", split, len(examples), folder)
    return examples


def in_validation(sentence: str, share: float = 0.15) -> bool:
    """Stable membership of the validation split, by a hash of the normalised sentence."""
    digest = hashlib.sha256(normalised(sentence).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _stable_order(sentence: str) -> bytes:
    return hashlib.sha256(sentence.encode()).digest()


def comfort_examples(comfort_dir: Path | None = COMFORT_DIR, limit: int = COMFORT_SENTENCES) -> list[Example]:
    """Gentle sentences in the storyteller's own register: the comfort scenes and the template's beats,
    each hero filled with a name the template uses, at most ``limit`` of them (a stable draw by hash)."""
    from kiosk.story.bank import COMFORTS, ENDINGS, HERO_NAMES, STARTERS
    from kiosk.story.teller import split_sentences

    texts = [b.text for beats in (*COMFORTS.values(), *ENDINGS.values()) for b in beats]
    texts += [s.opening.text for starters in STARTERS.values() for s in starters]
    if comfort_dir is not None and comfort_dir.is_dir():
        for path in sorted(comfort_dir.glob("*.jsonl")):
            lines = path.read_text(encoding="utf-8").splitlines()
            texts += [json.loads(line)["text"] for line in lines if line.strip()]
    sentences = set()
    for text in texts:
        name = HERO_NAMES[_stable_order(text)[0] % len(HERO_NAMES)]
        filled = text.replace("{hero}", name).replace("{Hero}", name)
        whole, rest = split_sentences(filled)  # as the gate splits what the model writes
        sentences.update(part for part in [*whole, rest.strip()] if len(part.split()) >= 4)
    drawn = sorted(sentences, key=_stable_order)[:limit]
    return [Example(sentence, GENTLE) for sentence in sorted(drawn)]


def train_validation(
    corpus_dir: Path = CORPUS_DIR, share: float = 0.15, comfort_dir: Path | None = COMFORT_DIR
) -> tuple[list[Example], list[Example]]:
    """(training, validation): the written-apart ``validation`` folder when there is one, else a hash share
    of ``train``. The comfort register joins training only (it is what the kiosk writes, not a judge of it)."""
    examples = read_split("train", corpus_dir)
    if (corpus_dir / "validation").is_dir():
        validation = read_split("validation", corpus_dir)
        judged = {normalised(e.sentence) for e in validation}  # two writers may meet on a line
        train = [e for e in examples if normalised(e.sentence) not in judged]
    else:
        validation = [e for e in examples if in_validation(e.sentence, share)]
        train = [e for e in examples if not in_validation(e.sentence, share)]
    seen = {normalised(e.sentence) for e in train + validation}
    comfort = [e for e in comfort_examples(comfort_dir) if normalised(e.sentence) not in seen]
    logger.info("%d comfort-register sentences join training as gentle", len(comfort))
    return train + comfort, validation


def split_by_label(corpus_dir: Path = CORPUS_DIR) -> dict[str, dict[str, int]]:
    """Sentence counts per split and label, for the README and the model card."""
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "validation", "test"):
        try:
            examples = read_split(split, corpus_dir)
        except FileNotFoundError:
            continue
        counts[split] = {label: sum(e.label == label for e in examples) for label in LABELS}
    return counts
