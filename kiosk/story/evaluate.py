"""``kiosk story eval``: per emotion, how well the storyteller does what the kiosk needs.

Alignment is judged by an offline text-emotion classifier (MiniLM zero-shot prototypes, see
``textmodel``) on the whole story; echo, repetition and safety come from the gates' rejections; latency is
measured from the start of the telling (the moment the emotion event is handled).
"""

from __future__ import annotations

import statistics

from kiosk.emotion.labels import EMOTIONS
from kiosk.events import Attributes
from kiosk.story import gates
from kiosk.story.teller import Storyteller, Telling
from kiosk.story.textmodel import TextModel


def tell_once(teller: Storyteller, emotion: str, seed: int) -> Telling:
    return next(step for step in teller.tell(emotion, seed=seed) if isinstance(step, Telling))


def evaluate(teller: Storyteller, judge: TextModel, n: int, seed: int = 1000) -> dict:
    per_emotion = {}
    for emotion in EMOTIONS:
        tellings = [tell_once(teller, emotion, seed + i) for i in range(n)]
        texts = [" ".join(s.text for s in t.story.scenes) for t in tellings]
        verdicts = [judge.emotion_of(text)[0] for text in texts]
        attempts = sum(t.attempts for t in tellings) or 1
        rejections = [r for t in tellings for r in t.rejections]
        generated = [t for t in tellings if t.tokens]
        per_emotion[emotion] = {
            "n": n,
            "alignment": round(sum(v == emotion for v in verdicts) / n, 3),
            "echo_rejections_rate": round(sum("echo" in r for r in rejections) / attempts, 3),
            "echoes_in_final_stories": sum(
                gates.is_echo(
                    t.story.scenes[1].text, " ".join(m["content"] for m in teller.prompt(t.story, Attributes()))
                )
                for t in tellings
                if not t.fallback
            ),
            "repetition_rate": round(sum("repetition" in r for r in rejections) / attempts, 3),
            "safety_rejections": sum(("blocklist" in r) or ("unsafe" in r) for r in rejections),
            "off_emotion_rejections": sum("off-emotion" in r for r in rejections),
            "fallback_rate": round(sum(t.fallback for t in tellings) / n, 3),
            "tokens_per_s": round(statistics.median(t.tokens_per_s for t in generated), 1) if generated else None,
            "first_words_ms": round(statistics.median(t.first_words_ms for t in tellings), 2),
            "first_token_ms": round(statistics.median(t.first_token_ms for t in generated), 1) if generated else None,
            "full_story_ms_median": round(statistics.median(t.latency_ms for t in tellings), 1),
            "full_story_ms_max": round(max(t.latency_ms for t in tellings), 1),
            "words_max": max(sum(len(s.text.split()) for s in t.story.scenes) for t in tellings),
            "sample": {"title": tellings[0].story.title, "text": texts[0], "fallback": tellings[0].fallback},
        }
    overall = {
        "alignment": round(statistics.mean(v["alignment"] for v in per_emotion.values()), 3),
        "fallback_rate": round(statistics.mean(v["fallback_rate"] for v in per_emotion.values()), 3),
        "echo_rejections_rate": round(statistics.mean(v["echo_rejections_rate"] for v in per_emotion.values()), 3),
        "echoes_in_final_stories": sum(v["echoes_in_final_stories"] for v in per_emotion.values()),
        "full_story_ms_max": max(v["full_story_ms_max"] for v in per_emotion.values()),
        "first_words_ms_max": max(v["first_words_ms"] for v in per_emotion.values()),
    }
    return {"generator": teller.name, "stories": n * len(EMOTIONS), "overall": overall, "per_emotion": per_emotion}
