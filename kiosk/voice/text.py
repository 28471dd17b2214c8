"""What the voice reads: a scene cut into parts, clauses and words, each word tied to its place on the page.

The page highlights words by their character offsets in the scene's own text, so every word keeps its
offsets here. The voice speaks only what it can say well: Latin letters (with accents), digits,
apostrophes and hyphens. Emoji and other scripts are left unspoken (an English voice would read a Chinese
character as "chinese letter" and an emoji as its Unicode name); a scene with nothing speakable is skipped.

A scene is synthesised in parts so the first sound comes quickly: the first clause of the scene alone,
then one sentence at a time; a sentence too long to say in one breath is cut at clauses, and a clause too
long at words, which also bounds each inference's time and memory.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

SENTENCE_END = re.compile(r"[.!?]+[\"'”’)]*(?=\s|$)")
CLAUSE_BREAK = re.compile(r"[,;:—–…]+|\s-\s")
TOKEN = re.compile(r"\S+")
PART_MAX_WORDS = 30  # a longer sentence is cut at clauses; a longer clause at words
CLAUSE_MAX_WORDS = 24
KEPT_PUNCTUATION = "'’-"


@dataclass(frozen=True)
class Word:
    """One spoken word: what espeak-ng is given, and where it stands in the scene's text."""

    spoken: str
    start: int
    end: int


@dataclass
class Clause:
    words: list[Word]
    terminator: str  # the punctuation the voice hears after it: . , ? ! ; :

    @property
    def spoken(self) -> str:
        return " ".join(w.spoken for w in self.words)


@dataclass
class Part:
    """What one inference says: a few clauses, ending a sentence or at a clause break."""

    clauses: list[Clause] = field(default_factory=list)

    @property
    def words(self) -> list[Word]:
        return [w for c in self.clauses for w in c.words]


def speakable(token: str) -> str:
    """The letters of ``token`` the voice can say; empty when there are none."""
    kept = []
    for char in unicodedata.normalize("NFC", token):
        if char.isdigit() or char in KEPT_PUNCTUATION:
            kept.append("'" if char == "’" else char)
        elif char.isalpha() and unicodedata.name(char, "").startswith("LATIN"):
            kept.append(char)
    spoken = "".join(kept).strip("'-")
    return spoken if any(c.isalnum() for c in spoken) else ""


def _words(text: str, offset: int) -> list[Word]:
    words = []
    for match in TOKEN.finditer(text):
        spoken = speakable(match.group())
        if spoken:
            words.append(Word(spoken, offset + match.start(), offset + match.end()))
    return words


def _terminator(punctuation: str) -> str:
    for mark in "?!.;:":
        if mark in punctuation:
            return mark
    return ","


def _clauses(sentence: str, offset: int, end_mark: str) -> list[Clause]:
    clauses, start = [], 0
    pieces = [(m.start(), m.end(), _terminator(m.group())) for m in CLAUSE_BREAK.finditer(sentence)]
    pieces.append((len(sentence), len(sentence), end_mark))
    for stop, resume, mark in pieces:
        words = _words(sentence[start:stop], offset + start)
        for i in range(0, len(words), CLAUSE_MAX_WORDS):  # a run-on clause is cut at words
            chunk = words[i : i + CLAUSE_MAX_WORDS]
            clauses.append(Clause(chunk, mark if i + CLAUSE_MAX_WORDS >= len(words) else ","))
        start = resume
    return clauses


def sentences(text: str) -> list[tuple[int, str, str]]:
    """(offset, sentence, end mark) for each sentence of ``text``."""
    found, start = [], 0
    for match in SENTENCE_END.finditer(text):
        found.append((start, text[start : match.end()], _terminator(match.group())))
        start = match.end()
    if text[start:].strip():
        found.append((start, text[start:], "."))
    return found


def plan(text: str) -> list[Part]:
    """The parts a scene is read in, in order; empty when nothing in it can be spoken."""
    parts: list[Part] = []
    for offset, sentence, mark in sentences(text):
        clauses = _clauses(sentence, offset, mark)
        part = Part()
        for clause in clauses:
            too_long = len(part.words) + len(clause.words) > PART_MAX_WORDS
            first_clause_of_scene = not parts and len(part.clauses) == 1
            if part.clauses and (too_long or first_clause_of_scene):
                parts.append(part)
                part = Part()
            part.clauses.append(clause)
        if part.clauses:
            parts.append(part)
    return parts
