"""The storyteller: the template guarantees the shape and the comfort, a small LLM adds the variety.

A story is three scenes:
1. the template's tailored opening for the emotion (names the hero and the feeling) — on screen at once;
2. a comfort scene the LLM writes, its answer prefilled with a kind helper arriving ("Then a wise old owl
   came and"), capped in length, cut at the last full sentence, every sentence gated before it is shown;
   after ``max_attempts`` failed attempts the template's own comfort scene stands in (``fallback``);
3. the template's hopeful ending.

This follows the seed's finding (short tailored openings beat long attribute-laden prompts, which made
small models echo them) and what SmolLM2-135M does when left alone: drift, villains, no length limit.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kiosk.events import Attributes
from kiosk.story import gates, template
from kiosk.story.llm import LanguageModel
from kiosk.story.template import TemplateScene, TemplateStory

logger = logging.getLogger(__name__)

# (who comes to help, where, what the picture shows)
HELPERS: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "angry": (
        ("a wise old owl", "hill", ("owl", "heart")),
        ("a calm little frog", "river", ("frog", "flower")),
        ("a kind rabbit", "meadow", ("rabbit", "sun")),
    ),
    "disgust": (
        ("a kind rabbit", "garden", ("rabbit", "bubbles")),
        ("a cheerful frog", "river", ("frog", "flower")),
        ("a helpful squirrel", "forest", ("squirrel", "tree")),
    ),
    "fear": (
        ("a friendly firefly", "night", ("firefly", "moon")),
        ("a brave little dog", "room", ("dog", "lantern")),
        ("a kind old owl", "forest", ("owl", "star")),
    ),
    "happy": (
        ("a playful puppy", "meadow", ("dog", "sun")),
        ("a bright butterfly", "garden", ("butterfly", "flower")),
        ("a singing bird", "meadow", ("bird", "rainbow")),
    ),
    "sad": (
        ("a gentle bear", "meadow", ("bear", "heart")),
        ("a fluffy rabbit", "meadow", ("rabbit", "flower")),
        ("a friendly bird", "garden", ("bird", "sun")),
    ),
    "surprise": (
        ("a curious bird", "meadow", ("bird", "rainbow")),
        ("a giggling frog", "river", ("frog", "star")),
        ("a twinkling star", "night", ("star", "moon")),
    ),
    "neutral": (
        ("a friendly squirrel", "forest", ("squirrel", "tree")),
        ("a quiet frog", "river", ("frog", "flower")),
        ("a wandering butterfly", "garden", ("butterfly", "sun")),
    ),
}

VOCABULARY = {
    None: "very simple words for a young child",
    "young child": "very simple words for a young child",
    "teenager": "clear, friendly words for an older child",
    "young adult": "clear, warm, simple words",
}

SYSTEM = "You tell short, gentle stories for children. Stories are kind, calm and safe."
MAX_SCENE_WORDS = 45
SENTENCE_END = re.compile(r"(?<=[.!?])[\"']?(\s|$)")


@dataclass
class Telling:
    """What happened while telling one story (for the event, the JSON output and the evaluation)."""

    story: TemplateStory
    generator: str
    fallback: bool
    attempts: int = 0
    rejections: list[str] = field(default_factory=list)
    tokens: int = 0
    generation_s: float = 0.0
    first_token_ms: float | None = None
    first_words_ms: float = 0.0
    latency_ms: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.generation_s if self.generation_s else 0.0


@dataclass(frozen=True)
class Partial:
    text: str


class Storyteller:
    def __init__(
        self,
        model: LanguageModel | None,
        unsafe=None,
        emotion_of=None,
        max_attempts: int = 3,
        max_tokens: int = 60,
        temperature: float = 0.8,
    ) -> None:
        self.model = model
        self.unsafe = unsafe  # sentence -> bool (the embedding safety check), or None
        self.emotion_of = emotion_of  # text -> emotion name (the on-emotion check), or None
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens
        self.temperature = temperature

    @property
    def name(self) -> str:
        return self.model.name if self.model else template.GENERATOR

    def tell(
        self, emotion: str, attributes: Attributes | None = None, seed: int | None = None, scenes: int = 3
    ) -> Iterator[Partial | Telling]:
        """Yields the story so far (``Partial``) as it grows, then the finished ``Telling``."""
        started = time.perf_counter()
        seed = random.randrange(1 << 30) if seed is None else seed
        base = template.tell(emotion, attributes, seed=seed, scenes=scenes)
        opening, ending = base.scenes[0], base.scenes[-1]
        yield Partial(f"{base.title}\n{opening.text}")
        telling = Telling(base, self.name, fallback=self.model is None)
        telling.first_words_ms = (time.perf_counter() - started) * 1000
        middle = base.scenes[1:-1]
        if self.model is not None and middle:
            comfort = yield from self._comfort_scene(base, attributes or Attributes(), seed, telling, started)
            if comfort is None:
                telling.fallback = True
                logger.info(
                    "template comfort scene used after %d attempts: %s", telling.attempts, "; ".join(telling.rejections)
                )
            else:
                middle = [comfort, *middle[1:]]
        story_scenes = (opening, *middle, ending)
        yield Partial("\n".join([base.title, *(s.text for s in story_scenes)]))
        telling.story = TemplateStory(emotion, base.title, base.hero, story_scenes)
        telling.latency_ms = (time.perf_counter() - started) * 1000
        yield telling

    def prompt(self, base: TemplateStory, attributes: Attributes) -> list[dict[str, str]]:
        hero = base.hero.name
        return [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"{base.scenes[0].text} Tell how a friend helps {hero} feel better, "
                f"in two short sentences with {VOCABULARY[attributes.age_group]}.",
            },
        ]

    def _comfort_scene(
        self, base: TemplateStory, attributes: Attributes, seed: int, telling: Telling, started: float
    ) -> Iterator[Partial]:
        rng = random.Random(seed)
        messages = self.prompt(base, attributes)
        prompt_text = " ".join(m["content"] for m in messages)
        for attempt in range(self.max_attempts):
            helper, setting, objects = rng.choice(HELPERS[base.emotion])
            prefill = f"Then {helper} came and"
            telling.attempts += 1
            accepted: list[str] = []
            pending = prefill
            reason = None
            generation_started = time.perf_counter()
            for piece in self.model.stream(messages, prefill, self.max_tokens, self.temperature, seed + attempt):
                if telling.first_token_ms is None:
                    telling.first_token_ms = (time.perf_counter() - started) * 1000
                telling.tokens += 1
                pending += piece
                sentences, pending = split_sentences(pending)
                for sentence in sentences:
                    verdict = gates.check_sentence(sentence, prompt_text, " ".join(accepted), self.unsafe)
                    if not verdict.passed:
                        reason = "; ".join(verdict.reasons)
                        break
                    accepted.append(sentence)
                    shown = " ".join(accepted)
                    yield Partial(f"{base.title}\n{base.scenes[0].text}\n{shown}")
                if reason or len(accepted) >= 2 or len(" ".join(accepted).split()) >= MAX_SCENE_WORDS:
                    break
            telling.generation_s += time.perf_counter() - generation_started
            if reason is None and not accepted:
                reason = "no complete sentence"
            if reason is None and self.emotion_of is not None:
                whole = " ".join([base.scenes[0].text, *accepted, base.scenes[-1].text])
                if (found := self.emotion_of(whole)) != base.emotion:
                    reason = f"off-emotion (reads as {found})"
            if reason is None:
                text = " ".join(accepted)
                if len(text.split()) > MAX_SCENE_WORDS:
                    text = accepted[0]
                text = re.sub(rf"\b{re.escape(base.hero.name)}\b", base.hero.name, text, flags=re.IGNORECASE)
                if text.count('"') % 2:  # a quotation cut short at the sentence cap
                    text += '"'
                prompt = template.illustration_prompt(setting, objects, base.hero, base.emotion)
                return TemplateScene(text, setting, objects, prompt)
            telling.rejections.append(reason)
            logger.info("attempt %d rejected: %s", attempt + 1, reason)
        return None


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences in ``text`` and the unfinished rest."""
    sentences, start = [], 0
    for match in SENTENCE_END.finditer(text):
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    return sentences, text[start:]
