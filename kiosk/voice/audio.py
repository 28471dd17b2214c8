"""Narration audio as 16-bit mono WAV: every browser plays it, it needs no encoder, and it is checked
from its header alone before the kiosk's browser is given it."""

from __future__ import annotations

import io
import wave

import numpy as np

MAX_SECONDS = 120.0  # one part of a scene is a sentence or two; nothing the kiosk says is longer
RATES = range(8000, 48001)


def to_wav(audio: np.ndarray, sample_rate: int) -> bytes:
    """Float samples (-1..1) as 16-bit PCM WAV bytes."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def wav_seconds(body: bytes) -> float:
    """Duration of a narration WAV; ``ValueError`` unless it is 16-bit mono PCM of sane rate and length."""
    try:
        with wave.open(io.BytesIO(body), "rb") as wav:
            channels, width, rate, frames = wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"audio is not a readable WAV: {str(exc)[:80]}") from None
    if channels != 1 or width != 2 or rate not in RATES:
        raise ValueError(f"audio must be 16-bit mono PCM at 8–48 kHz, not {channels} ch × {8 * width} bit at {rate} Hz")
    if frames * width > len(body):
        raise ValueError("audio declares more samples than it holds")
    seconds = frames / rate
    if seconds > MAX_SECONDS:
        raise ValueError(f"audio lasts {seconds:.0f} s; the most is {MAX_SECONDS:.0f} s")
    return seconds
