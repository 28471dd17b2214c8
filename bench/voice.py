"""The voice's figures on this machine (``make bench-voice``): JSON on stdout, three scenes to listen to.

For every scene of 21 template stories (3 per emotion): the time from the scene's text to its first part
of audio (espeak-ng phonemes + one ONNX inference + WAV), the whole scene's synthesis time, the audio's
length and the real-time factor (synthesis seconds per second of speech), on one ONNX Runtime thread; the
resident memory of this process, which holds the voice as the narrate service does; and three scenes
encoded as Ogg Opus (Debian's opusenc) in bench/results/voice/ so a person can hear the kiosk.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import time
import wave
from pathlib import Path
from typing import get_args

import numpy as np

from bench.machine import describe
from kiosk import procstats
from kiosk.config import VoiceConfig
from kiosk.emotion.labels import Emotion
from kiosk.story import template
from kiosk.voice.audio import to_wav
from kiosk.voice.load import load_narrator

RESULTS = Path(__file__).resolve().parent / "results" / "voice"
GAP_S = 0.25  # between the parts of a scene in the listening copies, as the page's switch between parts


def scenes(stories_per_emotion: int) -> list[tuple[str, int, str]]:
    found = []
    for emotion in get_args(Emotion):
        for seed in range(stories_per_emotion):
            story = template.tell(emotion, seed=seed)
            found.extend((emotion, i, scene.text) for i, scene in enumerate(story.scenes))
    return found


def pcm(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


def save_listening_copy(name: str, parts: list, sample_rate: int) -> str:
    """The scene's parts joined, as Ogg Opus when opusenc is installed, else WAV."""
    gap = np.zeros(int(GAP_S * sample_rate), dtype="<i2")
    joined = np.concatenate([x for p in parts for x in (pcm(p.wav), gap)][:-1]).astype(np.float32) / 32767
    wav = to_wav(joined, sample_rate)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if shutil.which("opusenc"):
        target = RESULTS / f"{name}.opus"
        subprocess.run(["opusenc", "--quiet", "--bitrate", "32", "-", str(target)], input=wav, check=True)
    else:
        target = RESULTS / f"{name}.wav"
        target.write_bytes(wav)
    return str(target.relative_to(RESULTS.parent.parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stories", type=int, default=3, help="template stories per emotion")
    parser.add_argument("--rate", type=float, default=VoiceConfig().rate)
    args = parser.parse_args(argv)

    rss_before = procstats.rss_mib()
    started = time.perf_counter()
    narrator, label = load_narrator(VoiceConfig(threads=1, rate=args.rate))
    load_s = time.perf_counter() - started
    next(narrator.narrate("Hello."))  # the first inference sets up ONNX Runtime's buffers
    rss_loaded = procstats.rss_mib()

    first_ms, scene_rtf, part_rtf, audio_s, listened, kept = [], [], [], [], [], 0
    heard: set[str] = set()
    for emotion, index, text in scenes(args.stories):
        started = time.perf_counter()
        parts = []
        for part in narrator.narrate(text):
            if not parts:
                first_ms.append((time.perf_counter() - started) * 1000)
            parts.append(part)
            part_rtf.append(part.synth_ms / 1000 / part.seconds)
        seconds = sum(p.seconds for p in parts)
        scene_rtf.append((time.perf_counter() - started) / seconds)
        audio_s.append(seconds)
        if index == 0 and emotion in ("sad", "fear", "happy") and emotion not in heard:
            heard.add(emotion)
            kept += 1
            name = f"scene-{kept}-{emotion}"
            listened.append({"file": save_listening_copy(name, parts, narrator.voice.sample_rate), "text": text})

    def summary(values: list[float], digits: int) -> dict:
        ordered = sorted(values)
        return {
            "median": round(statistics.median(ordered), digits),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], digits),
            "max": round(ordered[-1], digits),
        }

    report = {
        "voice": label,
        "timings": next(narrator.narrate("Hello.")).timings,
        "rate": args.rate,
        "onnxruntime_threads": 1,
        "scenes": len(audio_s),
        "first_audio_ms": summary(first_ms, 1),
        "first_audio_budget_ms": 300,
        "realtime_factor_scene": summary(scene_rtf, 3),
        "realtime_factor_part": summary(part_rtf, 3),
        "realtime_factor_budget": 0.1,
        "scene_audio_s": summary(audio_s, 2),
        "load_s": round(load_s, 2),
        "rss_mib": {"before_voice": round(rss_before, 1), "voice_loaded": round(rss_loaded, 1),
                    "after_all_scenes": round(procstats.rss_mib(), 1)},
        "listen": listened,
        "machine": describe(),
    }  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
