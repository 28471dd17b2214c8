"""One verdict per sentence: the blocklist first, then the learned classifier.

This is what ``kiosk story check`` prints and what the storyteller's gates ask. A sentence is refused
when either layer says so; the reasons name the layer and what it saw. Text that is not a plausible story
sentence (far too long, not UTF-8) is refused with a reason rather than judged, because the kiosk never
shows such text to a child.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from kiosk.safety.classifier import SafetyClassifier
from kiosk.story.gates import blocked_words

logger = logging.getLogger(__name__)

MAX_SENTENCE_CHARS = 2000
ECHO_CHARS = 400


class SentenceVerdict(BaseModel):
    """The stable JSON shape of one line of ``kiosk story check --json``."""

    sentence: str = Field(description="the sentence as read (cut to 400 characters with … when longer)")
    safe: bool
    reasons: list[str] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict, description="unsafe probability and per category")


def echo(sentence: str) -> str:
    return sentence if len(sentence) <= ECHO_CHARS else sentence[:ECHO_CHARS] + "…"


class SentenceChecker:
    """Blocklist + classifier (``None``: blocklist only, for a kiosk whose classifier failed to load)."""

    def __init__(self, classifier: SafetyClassifier | None) -> None:
        self.classifier = classifier

    def reasons_and_scores(self, sentence: str) -> tuple[list[str], dict[str, float]]:
        reasons: list[str] = []
        if blocked := blocked_words(sentence):
            reasons.append(f"blocklist: {', '.join(blocked)}")
        scores: dict[str, float] = {}
        if self.classifier is not None:
            score = self.classifier.score(sentence)
            scores = {"unsafe": score.unsafe, "threshold": score.threshold, **score.categories}
            if score.is_unsafe:
                reasons.append(f"classifier: {score.category} {score.unsafe:.2f}")
        return reasons, scores

    def check(self, sentence: str) -> SentenceVerdict:
        text = sentence.strip()
        if not text:
            return SentenceVerdict(sentence="", safe=True)
        if len(text) > MAX_SENTENCE_CHARS:
            reasons, scores = self.reasons_and_scores(text)
            reasons.insert(0, f"too long for a story sentence ({len(text)} characters > {MAX_SENTENCE_CHARS})")
            return SentenceVerdict(sentence=echo(text), safe=False, reasons=reasons, scores=scores)
        reasons, scores = self.reasons_and_scores(text)
        return SentenceVerdict(sentence=echo(text), safe=not reasons, reasons=reasons, scores=scores)

    def unreadable(self, raw: bytes, problem: str) -> SentenceVerdict:
        return SentenceVerdict(sentence=echo(raw.decode("utf-8", "replace")), safe=False, reasons=[problem])


def summary(verdicts: list[SentenceVerdict]) -> dict[str, Any]:
    unsafe = [v for v in verdicts if not v.safe]
    return {
        "summary": True,
        "sentences": len(verdicts),
        "safe": len(verdicts) - len(unsafe),
        "unsafe": len(unsafe),
    }
