"""Story safety figures (JSON): the held-out test split through each layer, per category.

The blocklist alone, the old MiniLM prototype check, the learned classifier alone and the full check
(blocklist + classifier) on the same sentences; plus the classifier's median ms per sentence.
"""

from __future__ import annotations

import json
import statistics
import time

from kiosk.safety.check import SentenceChecker
from kiosk.safety.classifier import SafetyClassifier
from kiosk.safety.corpus import read_split
from kiosk.safety.evaluate import judge_report
from kiosk.story.gates import blocked_words
from kiosk.story.textmodel import TextModel


def summary(report: dict) -> dict:
    return {k: report[k] for k in ("unsafe_n", "unsafe_stopped", "gentle_n", "gentle_passed", "per_category")}


def main() -> int:
    test = read_split("test")
    classifier = SafetyClassifier()
    checker = SentenceChecker(classifier)
    prototypes = TextModel()
    timings = []
    for example in test[:200]:
        started = time.perf_counter()
        classifier.score(example.sentence)
        timings.append((time.perf_counter() - started) * 1000)
    full = judge_report(lambda s: not checker.check(s).safe, test, progress=True)
    result = {
        "split": "corpus/safety/test (written apart from the training sentences)",
        "classifier": classifier.name,
        "threshold": classifier.threshold,
        "ms_per_sentence_median": round(statistics.median(timings), 2),
        "full_check": summary(full),
        "classifier_alone": summary(judge_report(classifier.is_unsafe, test)),
        "blocklist_alone": summary(judge_report(lambda s: bool(blocked_words(s)), test)),
        "blocklist_and_prototypes (before)": summary(
            judge_report(lambda s: bool(blocked_words(s)) or prototypes.is_unsafe(s), test)
        ),
        "missed_unsafe": full["missed_unsafe"],
        "refused_gentle": full["refused_gentle"],
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
