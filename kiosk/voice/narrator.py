"""A scene's text in, its narration out, part by part: audio, duration and when each word is spoken.

Word timings come from the voice's own phoneme durations when its graph gives them ("synthesiser"), else
from the phonemes counted and spread over the audio ("estimated"). espeak-ng sometimes runs two words
together ("of the" → ʌvðə) or says one as several ("3.5"); where its words and the page's words do not
pair up one to one, the clause's time is shared among its words by their length.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kiosk.voice.audio import to_wav
from kiosk.voice.phonemes import Espeak
from kiosk.voice.piper import HOP_LENGTH, PiperVoice, release_memory
from kiosk.voice.text import Clause, Part, plan

logger = logging.getLogger(__name__)

PUNCTUATION_WEIGHT = 4.0  # an estimated pause at a comma or full stop, in phonemes


@dataclass(frozen=True)
class WordTime:
    start: int  # characters in the scene's text
    end: int
    t0: float  # seconds into the part's audio
    t1: float


@dataclass
class NarrationPart:
    index: int
    count: int
    wav: bytes
    seconds: float
    words: list[WordTime]
    timings: str  # "synthesiser" or "estimated"
    synth_ms: float  # phonemes + inference + encoding of this part


class Narrator:
    def __init__(self, voice: PiperVoice, espeak: Espeak | None = None, rate: float = 1.0) -> None:
        self.voice = voice
        self.espeak = espeak or Espeak(voice.espeak_voice)
        self.rate = rate

    def narrate(self, text: str) -> Iterator[NarrationPart]:
        """The scene's parts as each is ready; nothing when no word of it can be spoken."""
        started = time.perf_counter()
        parts = plan(text)
        clauses = [c for p in parts for c in p.clauses]
        phonemes = iter(self.espeak.clauses([c.spoken for c in clauses]))
        for index, part in enumerate(parts):
            part_phonemes = [next(phonemes) for _ in part.clauses]
            yield self._speak(part, part_phonemes, index, len(parts), started)
            started = time.perf_counter()
        release_memory()  # between scenes, off the path to the first sound

    def _speak(self, part: Part, clause_phonemes: list[str], index: int, count: int, started: float) -> NarrationPart:
        line, owners = _phoneme_line(part.clauses, clause_phonemes)
        ids, id_owner = self.voice.ids(line)
        speech = self.voice.speak(ids, self.rate)
        seconds = len(speech.audio) / self.voice.sample_rate
        if speech.durations is not None:
            frames, timings = speech.durations.astype(np.float64), "synthesiser"
            seconds_per_frame = HOP_LENGTH / self.voice.sample_rate
        else:
            frames, timings = _estimated_frames(ids, id_owner, line), "estimated"
            seconds_per_frame = seconds / max(frames.sum(), 1e-9)
        ends = np.cumsum(frames) * seconds_per_frame
        spans: dict[tuple[int, int], list[float]] = {}
        for i, owner in enumerate(id_owner):
            key = owners[owner] if owner >= 0 else None
            if key is not None:
                begin = ends[i] - frames[i] * seconds_per_frame
                span = spans.setdefault(key, [begin, ends[i]])
                span[1] = ends[i]
        words = _word_times(part.clauses, spans)
        wav = to_wav(speech.audio, self.voice.sample_rate)
        return NarrationPart(
            index, count, wav, round(seconds, 3), words, timings, (time.perf_counter() - started) * 1000
        )


def _phoneme_line(clauses: list[Clause], clause_phonemes: list[str]) -> tuple[str, list[tuple[int, int] | None]]:
    """Piper's phoneme string for a part (clauses joined by their punctuation) and, per character, the
    (clause, espeak word) it belongs to."""
    line: list[str] = []
    owners: list[tuple[int, int] | None] = []
    for c, (clause, ipa) in enumerate(zip(clauses, clause_phonemes, strict=True)):
        for w, word in enumerate(ipa.split()):
            if w:
                line.append(" ")
                owners.append(None)
            line.extend(word)
            owners.extend([(c, w)] * len(word))
        line.append(clause.terminator)
        owners.append(None)
        if c < len(clauses) - 1:
            line.append(" ")
            owners.append(None)
    return "".join(line), owners


def _estimated_frames(ids: list[int], id_owner: list[int], line: str) -> np.ndarray:
    weights = np.ones(len(ids))
    for i, owner in enumerate(id_owner):
        if owner >= 0 and line[owner] in ",.;:?!":
            weights[i] = PUNCTUATION_WEIGHT
    return weights


def _word_times(clauses: list[Clause], spans: dict[tuple[int, int], list[float]]) -> list[WordTime]:
    words: list[WordTime] = []
    for c, clause in enumerate(clauses):
        spoken = sorted((w, span) for (ci, w), span in spans.items() if ci == c)
        if not spoken:
            continue
        if len(spoken) == len(clause.words):
            for word, (_, (t0, t1)) in zip(clause.words, spoken, strict=True):
                words.append(WordTime(word.start, word.end, round(float(t0), 3), round(float(t1), 3)))
            continue
        t0, t1 = spoken[0][1][0], spoken[-1][1][1]
        weights = np.array([len(w.spoken) + 1 for w in clause.words], dtype=np.float64)
        bounds = t0 + np.concatenate([[0], np.cumsum(weights)]) / weights.sum() * (t1 - t0)
        for word, a, b in zip(clause.words, bounds[:-1], bounds[1:], strict=True):
            words.append(WordTime(word.start, word.end, round(float(a), 3), round(float(b), 3)))
    return words
