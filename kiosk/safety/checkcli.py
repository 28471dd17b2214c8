"""``kiosk story check [--json] [FILE]``: the safety verdict for each line of a file (stdin by default).

Stable output (``--json``): one JSON object per input line, ``{"sentence", "safe", "reasons", "scores"}``,
in input order, then one summary line ``{"summary": true, "sentences", "safe", "unsafe"}``. Empty lines get a
verdict too (safe, nothing to show), so line *n* of the output answers line *n* of the input. A line that is
not UTF-8 or is far longer than a story sentence is refused with the reason. Exit status: 0 when every
sentence is safe, 1 when any is unsafe, 2 for a usage or input error, 3 when the classifier cannot load.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kiosk.safety.check import SentenceChecker, SentenceVerdict, summary
from kiosk.safety.classifier import DEFAULT_MODEL_DIR, SafetyClassifier, SafetyModelUnavailable

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # a line longer than this is read in part and refused, never held whole


def read_lines(stream: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Raw lines without their newline, and whether the line was cut at ``MAX_LINE_BYTES``."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        cut = len(line) > MAX_LINE_BYTES and not line.endswith(b"\n")
        if cut:
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
        yield line.rstrip(b"\r\n"), cut


def verdict_for(checker: SentenceChecker, raw: bytes, cut: bool) -> SentenceVerdict:
    if cut:
        return checker.unreadable(raw[:400], f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return checker.unreadable(raw, f"not UTF-8 (byte {exc.start})")
    return checker.check(text)


def show(verdict: SentenceVerdict, as_json: bool) -> str:
    if as_json:
        return verdict.model_dump_json()
    mark = "safe  " if verdict.safe else "UNSAFE"
    why = f"  [{'; '.join(verdict.reasons)}]" if verdict.reasons else ""
    return f"{mark} {verdict.sentence}{why}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk story check", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, help="sentences, one per line (default: standard input)")
    parser.add_argument("--json", action="store_true", help="one JSON line per sentence, then a summary line")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="safety classifier directory")
    args = parser.parse_args(argv)
    if args.file is not None and not args.file.is_file():
        print(f"kiosk story check: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        checker = SentenceChecker(SafetyClassifier(args.model))
    except SafetyModelUnavailable as exc:
        print(f"kiosk story check: the safety classifier cannot load: {exc}", file=sys.stderr)
        return 3
    verdicts = []
    with args.file.open("rb") if args.file else sys.stdin.buffer as stream:
        for raw, cut in read_lines(stream):
            verdict = verdict_for(checker, raw, cut)
            verdicts.append(verdict)
            print(show(verdict, args.json), flush=True)
    totals = summary(verdicts)
    print(json.dumps(totals) if args.json else f"{totals['unsafe']} of {totals['sentences']} unsafe", flush=True)
    return 1 if totals["unsafe"] else 0
