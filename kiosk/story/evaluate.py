"""``kiosk story eval``: per emotion, how well the storyteller does what the kiosk needs.

- alignment: an offline text-emotion judge (MiniLM zero-shot prototypes, ``textmodel``) on the whole story;
- unsafe candidates before the gates: the share of written comfort scenes that the blocklist or the safety
  classifier refused (what the gates had to catch, not what a child saw);
- coherence: the MiniLM coherence judge on the shown middle scene (``TextModel.coherence``: reads as comfort
  for the feeling and follows the opening), as a mean and as the share at or above 0.5. A proxy: the
  read-through of ``stories.md`` by a person is the real judge;
- fluency: the mean token log-probability the generating model gave the shown scene (the reranker's own
  signal, so it says how far the chosen scenes are from wandering, not a separate judge);
- echo, repetition and fallbacks from the gates' rejections; latency from the start of the telling (the
  moment the emotion event is handled).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from kiosk.emotion.labels import EMOTIONS
from kiosk.events import Attributes
from kiosk.story import gates
from kiosk.story.teller import Storyteller, Telling
from kiosk.story.textmodel import TextModel

READ_THROUGH_SEEDS = (11, 12, 13)


def mean_or_none(values) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.mean(known), 3) if known else None


def tell_once(teller: Storyteller, emotion: str, seed: int) -> Telling:
    return next(step for step in teller.tell(emotion, seed=seed) if isinstance(step, Telling))


def middle_coherence(judge: TextModel, telling: Telling) -> float:
    scenes = telling.story.scenes
    return judge.coherence(scenes[0].text, scenes[1].text, telling.story.emotion)


def evaluate(teller: Storyteller, judge: TextModel, n: int, seed: int = 1000) -> dict:
    per_emotion = {}
    for emotion in EMOTIONS:
        tellings = [tell_once(teller, emotion, seed + i) for i in range(n)]
        texts = [" ".join(s.text for s in t.story.scenes) for t in tellings]
        verdicts = [judge.emotion_of(text)[0] for text in texts]
        attempts = sum(t.attempts for t in tellings) or 1
        rejections = [r for t in tellings for r in t.rejections]
        candidates = [c for t in tellings for c in t.candidates]
        generated = [t for t in tellings if t.tokens]
        coherence = [middle_coherence(judge, t) for t in tellings if not t.fallback]
        fluency = [t.chosen.mean_logprob for t in tellings if t.chosen and t.chosen.mean_logprob is not None]
        per_emotion[emotion] = {
            "n": n,
            "alignment": round(sum(v == emotion for v in verdicts) / n, 3),
            "candidates": len(candidates),
            "unsafe_candidates_rate": round(sum(c.unsafe for c in candidates) / len(candidates), 3)
            if candidates
            else None,
            "coherence_mean": round(statistics.mean(coherence), 3) if coherence else None,
            "coherent_share": round(sum(c >= 0.5 for c in coherence) / len(coherence), 3) if coherence else None,
            "chosen_mean_logprob": mean_or_none(fluency),
            "echo_rejections_rate": round(sum("echo" in r for r in rejections) / attempts, 3),
            "echoes_in_final_stories": sum(
                gates.is_echo(
                    t.story.scenes[1].text, " ".join(m["content"] for m in teller.prompt(t.story, Attributes()))
                )
                for t in tellings
                if not t.fallback
            ),
            "repetition_rate": round(sum("repetition" in r for r in rejections) / attempts, 3),
            "safety_rejections": sum(("blocklist" in r) or ("classifier" in r) for r in rejections),
            "off_emotion_rejections": sum("off-emotion" in r for r in rejections),
            "wandering_rejections": sum("wandering" in r for r in rejections),
            "fallback_rate": round(sum(t.fallback for t in tellings) / n, 3),
            "tokens_per_s": round(statistics.median(t.tokens_per_s for t in generated), 1) if generated else None,
            "first_words_ms": round(statistics.median(t.first_words_ms for t in tellings), 2),
            "first_token_ms": round(statistics.median(t.first_token_ms for t in generated), 1) if generated else None,
            "full_story_ms_median": round(statistics.median(t.latency_ms for t in tellings), 1),
            "full_story_ms_max": round(max(t.latency_ms for t in tellings), 1),
            "words_max": max(sum(len(s.text.split()) for s in t.story.scenes) for t in tellings),
            "sample": {"title": tellings[0].story.title, "text": texts[0], "fallback": tellings[0].fallback},
        }
    values = per_emotion.values()
    rated = [v for v in values if v["unsafe_candidates_rate"] is not None]
    coherent = [v for v in values if v["coherent_share"] is not None]
    overall = {
        "alignment": round(statistics.mean(v["alignment"] for v in values), 3),
        "fallback_rate": round(statistics.mean(v["fallback_rate"] for v in values), 3),
        "unsafe_candidates_rate": round(
            sum(v["unsafe_candidates_rate"] * v["candidates"] for v in rated) / sum(v["candidates"] for v in rated), 3
        )
        if rated
        else None,
        "coherent_share": round(statistics.mean(v["coherent_share"] for v in coherent), 3) if coherent else None,
        "chosen_mean_logprob": mean_or_none(v["chosen_mean_logprob"] for v in values),
        "echo_rejections_rate": round(statistics.mean(v["echo_rejections_rate"] for v in values), 3),
        "echoes_in_final_stories": sum(v["echoes_in_final_stories"] for v in values),
        "full_story_ms_median": round(statistics.median(v["full_story_ms_median"] for v in values), 1),
        "full_story_ms_max": max(v["full_story_ms_max"] for v in values),
        "first_words_ms_max": max(v["first_words_ms"] for v in values),
    }
    return {"generator": teller.name, "stories": n * len(EMOTIONS), "overall": overall, "per_emotion": per_emotion}


def read_through(teller: Storyteller, judge: TextModel | None = None) -> list[dict]:
    """The 21 stories a person reads (3 per emotion, fixed seeds), with what the gates saw."""
    stories = []
    for emotion in EMOTIONS:
        for seed in READ_THROUGH_SEEDS:
            telling = tell_once(teller, emotion, seed)
            stories.append(
                {
                    "emotion": emotion,
                    "seed": seed,
                    "title": telling.story.title,
                    "scenes": [s.text for s in telling.story.scenes],
                    "fallback": telling.fallback,
                    "coherence": round(middle_coherence(judge, telling), 3) if judge and not telling.fallback else None,
                    "candidates": [c.summary() for c in telling.candidates],
                    "latency_ms": round(telling.latency_ms),
                }
            )
    return stories


def stories_markdown(stories: list[dict], generator: str) -> str:
    lines = [
        "# 21 stories for a read-through",
        "",
        f"Generator: `{generator}`; 3 stories per emotion (seeds {', '.join(map(str, READ_THROUGH_SEEDS))}), "
        "written by `kiosk story eval --stories`. The middle scene is the one the model wrote (or the template's, "
        "marked *fallback*); the candidates it wrote and what the gates said follow each story.",
    ]
    for number, story in enumerate(stories, 1):
        opening, *middle, ending = story["scenes"]
        lines += [
            "",
            f"## {number}. {story['emotion']} (seed {story['seed']}): {story['title']}",
            "",
            f"> {opening}",
            ">",
            f"> **{' '.join(middle)}**" + (" *(fallback: template scene)*" if story["fallback"] else ""),
            ">",
            f"> {ending}",
            "",
        ]
        for c in story["candidates"]:
            verdict = (
                "shown" if c["text"] and c["text"] in " ".join(middle) else ("passed" if c["passed"] else c["reason"])
            )
            refused = f" ✗ {c['refused_sentence']}" if c.get("refused_sentence") else ""
            fluency = "" if c.get("mean_logprob") is None else f", mean log-probability {c['mean_logprob']}"
            lines.append(f"- candidate ({verdict}; score {c['score']}{fluency}): {c['text'] or '—'}{refused}")
    return "\n".join(lines) + "\n"


def write_stories(teller: Storyteller, judge: TextModel, path: Path) -> list[dict]:
    stories = read_through(teller, judge)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(stories_markdown(stories, teller.name))
    return stories
