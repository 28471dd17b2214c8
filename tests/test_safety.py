"""The story safety layer: the corpus, the shipped classifier on the held-out split, and `kiosk story check`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.safety.check import SentenceChecker
from kiosk.safety.classifier import DEFAULT_MODEL_DIR, SafetyClassifier, windows
from kiosk.safety.corpus import (
    COMFORT_SENTENCES,
    GENTLE,
    LABELS,
    UNSAFE_CATEGORIES,
    comfort_examples,
    read_split,
    train_validation,
)
from kiosk.safety.evaluate import judge_report

KIOSK = str(Path(sys.executable).parent / "kiosk")


def normalised(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def test_the_corpus_is_broad_and_its_test_split_is_apart_from_training():
    train = read_split("train")
    test = read_split("test")
    assert len(train) >= 3000
    for label in LABELS:
        assert sum(e.label == label for e in train) >= 100, label
        assert sum(e.label == label for e in test) >= 50, label
    assert not {normalised(e.sentence) for e in train} & {normalised(e.sentence) for e in test}
    fit, validation = train_validation()
    assert not {normalised(e.sentence) for e in fit} & {normalised(e.sentence) for e in validation}
    assert not {normalised(e.sentence) for e in validation} & {normalised(e.sentence) for e in test}
    for label in LABELS:
        assert sum(e.label == label for e in validation) >= 25, label


def test_validation_is_the_written_apart_folder_when_there_is_one(tmp_path):
    for split, lines in (("train", ["A fox ran.", "Kai fell off the roof."]), ("validation", ["A hen sang."])):
        (tmp_path / split).mkdir()
        (tmp_path / split / "gentle.txt").write_text(lines[0] + "\n")
    (tmp_path / "train" / "injury.txt").write_text("Kai fell off the roof.\n")
    fit, validation = train_validation(tmp_path, comfort_dir=None)
    assert [e.sentence for e in validation] == ["A hen sang."]
    assert {"A fox ran.", "Kai fell off the roof."} <= {e.sentence for e in fit}


def test_the_kiosks_own_comfort_register_is_learned_as_gentle():
    """Sentences of the team's comfort scenes and the template beats join training as gentle: whole
    sentences with the hero's name filled in, a bounded, stable draw."""
    examples = comfort_examples()
    assert examples == comfort_examples() and 500 <= len(examples) <= COMFORT_SENTENCES
    assert all(e.label == GENTLE and "{" not in e.sentence and len(e.sentence.split()) >= 4 for e in examples)
    fit, _ = train_validation()
    assert {e.sentence for e in examples} & {e.sentence for e in fit}


@pytest.fixture(scope="module")
def classifier() -> SafetyClassifier:
    return SafetyClassifier(DEFAULT_MODEL_DIR)


@pytest.mark.slow
def test_the_shipped_classifier_keeps_its_figures_on_the_held_out_split(classifier):
    """A regression guard at the shipped model's level (its card has the figures and every miss); the
    product's goal, 97% stopped with 95% of gentle sentences passing, is not reached yet (see the card)."""
    checker = SentenceChecker(classifier)
    report = judge_report(lambda s: not checker.check(s).safe, read_split("test"))
    assert report["unsafe_stopped"] >= 0.90, report["missed_unsafe"]
    assert report["gentle_passed"] >= 0.90, report["refused_gentle"]
    card = json.loads((DEFAULT_MODEL_DIR / "eval.json").read_text())["test"]["full_check"]
    assert card["unsafe_stopped"] == report["unsafe_stopped"]  # the card's figures are this run's figures
    assert card["gentle_passed"] == report["gentle_passed"]


def test_scenes_the_old_gates_let_through_are_stopped_and_gentle_ones_pass(classifier):
    checker = SentenceChecker(classifier)
    unsafe = [
        "Then a fluffy rabbit came and they took a bite of her head.",
        "The fox whispered that it would be their secret and nobody else must know.",
        "Then a clever cat came and showed Milo how to climb out of the window onto the roof.",
    ]
    gentle = [
        "Then a gentle bear came and sat beside Ada, and they watched the clouds together.",
        "Kai wobbled on the log but did not fall, and the frog clapped.",
        "A kind nurse put a plaster on the grazed knee and gave a warm smile.",
    ]
    assert [checker.check(s).safe for s in unsafe] == [False] * 3, [checker.check(s) for s in unsafe]
    assert [checker.check(s).safe for s in gentle] == [True] * 3, [checker.check(s) for s in gentle]
    verdict = checker.check(unsafe[0])
    assert verdict.scores["unsafe"] >= verdict.scores["threshold"]
    assert set(verdict.scores) == {"unsafe", "threshold", *UNSAFE_CATEGORIES}


def test_an_unsafe_clause_cannot_hide_in_a_long_harmless_line(classifier):
    harmless = "The ducks swam slowly round the pond in the warm afternoon sun. " * 12
    line = harmless + "Then the fox said it was their secret game and Ada must never tell anyone."
    assert len(windows(line)) > 1
    assert not SentenceChecker(classifier).check(line).safe


def test_the_blocklist_alone_still_refuses_when_the_classifier_is_absent():
    checker = SentenceChecker(None)
    assert not checker.check("The owl found a knife.").safe
    assert checker.check("The owl sang softly.").safe


def run_check(stdin: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KIOSK, "story", "check", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


@pytest.mark.slow
def test_story_check_gives_one_verdict_per_line_for_any_input(tmp_path):
    lines = [
        b"Then a gentle bear came and sat beside Ada.",
        b"Then a fluffy rabbit came and they took a bite of her head.",
        b"",
        ("The snail went on. " * 6000).encode(),  # ~110 kB
        b"The owl \xff\xfe said hello.",
        "Noor watched the stars 🌟 with Zoë.".encode(),
    ]
    result = run_check(b"\n".join(lines) + b"\n", "--json")
    assert "Traceback" not in result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    verdicts, summary = rows[:-1], rows[-1]
    assert len(verdicts) == len(lines)
    assert all(set(v) == {"sentence", "safe", "reasons", "scores"} for v in verdicts)
    assert [v["safe"] for v in verdicts] == [True, False, True, False, False, True]
    assert "too long" in verdicts[3]["reasons"][0] and len(verdicts[3]["sentence"]) < 500
    assert "UTF-8" in verdicts[4]["reasons"][0]
    assert summary == {"summary": True, "sentences": 6, "safe": 3, "unsafe": 3}
    assert result.returncode == 1
    file = tmp_path / "gentle.txt"
    file.write_text("A kind owl hummed a song.\n")
    plain = subprocess.run([KIOSK, "story", "check", str(file)], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and plain.stdout.startswith("safe")
    missing = run_check(b"", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and b"no such file" in missing.stderr


def test_story_check_says_clearly_when_the_classifier_is_missing(tmp_path):
    result = run_check(b"hello\n", "--model", str(tmp_path / "absent"))
    assert result.returncode == 3
    assert b"cannot load" in result.stderr and b"Traceback" not in result.stderr


def test_every_gentle_label_reads_as_gentle():
    assert GENTLE in LABELS and LABELS[0] == GENTLE
