"""Per-category figures for a sentence judge: unsafe sentences stopped, gentle sentences passed, misses.

A *judge* is any callable sentence → refused (bool), so the blocklist alone, the old embedding prototypes,
the classifier alone and the full check are measured the same way on the same sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kiosk.safety.corpus import GENTLE, UNSAFE_CATEGORIES, Example

Judge = Callable[[str], bool]


def judge_report(judge: Judge, examples: Sequence[Example], progress: bool = False) -> dict:
    """Recall per unsafe category, pass rate of gentle sentences, and every mistake (for people to read)."""
    items = examples
    if progress:
        from tqdm import tqdm

        items = tqdm(examples, desc="judging", unit="sentence", leave=False)
    refused = [(e, judge(e.sentence)) for e in items]
    per_category = {}
    for category in UNSAFE_CATEGORIES:
        rows = [r for e, r in refused if e.label == category]
        if rows:
            per_category[category] = {"n": len(rows), "stopped": round(sum(rows) / len(rows), 4)}
    unsafe = [r for e, r in refused if e.label != GENTLE]
    gentle = [r for e, r in refused if e.label == GENTLE]
    return {
        "unsafe_n": len(unsafe),
        "unsafe_stopped": round(sum(unsafe) / len(unsafe), 4) if unsafe else None,
        "gentle_n": len(gentle),
        "gentle_passed": round(1 - sum(gentle) / len(gentle), 4) if gentle else None,
        "per_category": per_category,
        "missed_unsafe": [f"[{e.label}] {e.sentence}" for e, r in refused if e.label != GENTLE and not r],
        "refused_gentle": [e.sentence for e, r in refused if e.label == GENTLE and r],
    }
