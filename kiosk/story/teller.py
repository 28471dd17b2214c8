"""The storyteller: the template guarantees the shape and the comfort, a small LLM adds the variety.

A story is three scenes:
1. the template's tailored opening for the emotion (names the hero and the feeling) — on screen at once;
2. a comfort scene the LLM writes, its answer prefilled with a kind helper arriving ("Then a wise old owl
   came and"), capped in length, cut at the last full sentence, every sentence gated before it is shown.
   Several candidates are written (each with its own helper and seed) and the best that passes every gate
   is shown, ranked by safety margin, the feeling and coherence with the opening; after ``max_attempts``
   generations without a passing one the template's own comfort scene stands in (``fallback``);
3. the template's hopeful ending.

The default model is SmolLM2-135M with the team's comfort LoRA (``kiosk/story/tuning``); its helpers (who
comes, where, what the picture shows) come with the adapter, the base model keeps the built-in list.

This follows the seed's finding (short tailored openings beat long attribute-laden prompts, which made
small models echo them) and what SmolLM2-135M does when left alone: drift, villains, no length limit.
"""

from __future__ import annotations

import difflib
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kiosk.events import Attributes
from kiosk.story import gates, scenery, template
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
# What the friend does for the feeling: a happy, surprised or peaceful child is joined, not calmed down
# (a reader found "let's take a deep breath" for a child delighted by a rainbow off-feeling).
FRIEND_DOES = {
    "happy": "shares {hero}'s happy feeling",
    "surprise": "shares the surprise with {hero}",
    "neutral": "enjoys the quiet moment with {hero}",
}
FRIEND_HELPS = "helps {hero} feel better"
MAX_SCENE_WORDS = 45
FLUENCY_FLOOR, FLUENCY_CEILING = 2.1, 0.6  # mean token log-probability mapped onto fluency 0..1
# A sentence ends at . ! or ? (and a closing quote) before a space and a word that does not start in lower
# case: '"Shall we breathe?" said the owl.' is one sentence, not a question and a fragment.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’]?(?:\s+(?=[^a-z\s])|$)")


@dataclass
class Candidate:
    """One generated comfort scene and how it fared."""

    helper: str
    setting: str
    objects: tuple[str, ...]
    sentences: list[str] = field(default_factory=list)
    reason: str | None = None
    refused_sentence: str | None = None
    unsafe_max: float = 0.0
    feeling: float = 0.0
    coherence: float = 0.0
    mean_logprob: float | None = None  # the model's own mean token log-probability (None: backend gives none)

    @property
    def fluency(self) -> float:
        """0..1 from the mean token log-probability: about -0.6 (fluent, in the corpus' register) maps to 1,
        -2.1 (wandering: odd verbs, a helper doing what it cannot) to 0. Neutral 0.5 when unknown."""
        if self.mean_logprob is None:
            return 0.5
        return min(1.0, max(0.0, (self.mean_logprob + FLUENCY_FLOOR) / (FLUENCY_FLOOR - FLUENCY_CEILING)))

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def score(self) -> float:
        """Higher is better: far from unsafe, fluent, on the feeling, coherent with the opening."""
        return 0.3 * (1 - self.unsafe_max) + 0.3 * self.fluency + 0.2 * self.feeling + 0.2 * self.coherence

    @property
    def unsafe(self) -> bool:
        """Refused for its content (not for echo, repetition or length)."""
        return self.reason is not None and ("blocklist" in self.reason or "classifier" in self.reason)

    def summary(self) -> dict:
        return {
            "helper": self.helper,
            "text": self.text,
            "passed": self.reason is None,
            "reason": self.reason,
            "refused_sentence": self.refused_sentence,
            "score": round(self.score, 3),
            "unsafe_max": round(self.unsafe_max, 3),
            "feeling": round(self.feeling, 3),
            "coherence": round(self.coherence, 3),
            "mean_logprob": None if self.mean_logprob is None else round(self.mean_logprob, 3),
        }


@dataclass
class Telling:
    """What happened while telling one story (for the event, the JSON output and the evaluation)."""

    story: TemplateStory
    generator: str
    fallback: bool
    attempts: int = 0
    rejections: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
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


SafetyJudge = Callable[[str], tuple[bool, float, str]]  # sentence -> (unsafe, probability, category)
FeelingJudge = Callable[[str], "str | tuple[str, dict[str, float]]"]  # text -> emotion (and scores)
CoherenceJudge = Callable[[str, str, str], float]  # opening, scene, emotion -> 0..1


class Storyteller:
    def __init__(
        self,
        model: LanguageModel | None,
        unsafe: SafetyJudge | Callable[[str], bool] | None = None,
        emotion_of: FeelingJudge | None = None,
        coherence: CoherenceJudge | None = None,
        helpers: dict[str, list[dict]] | None = None,
        max_attempts: int = 3,
        candidates: int = 1,
        budget_s: float = 2.0,
        max_tokens: int = 60,
        temperature: float = 0.8,
        min_mean_logprob: float | None = None,
    ) -> None:
        self.model = model
        self.unsafe = unsafe  # the learned safety check: (unsafe, probability, category) or a bool
        self.emotion_of = emotion_of  # text -> emotion name (or (name, scores)): the on-emotion gate
        self.coherence = coherence
        self.helpers = helpers
        self.max_attempts = max(max_attempts, candidates)
        self.candidates = candidates
        self.budget_s = budget_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.min_mean_logprob = min_mean_logprob  # below it a candidate is refused as wandering

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
        does = FRIEND_DOES.get(base.emotion, FRIEND_HELPS).format(hero=base.hero.name)
        return [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"{base.scenes[0].text} Tell how a friend {does}, "
                f"in two short sentences with {VOCABULARY[attributes.age_group]}.",
            },
        ]

    def helper_choices(self, emotion: str, setting: str | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
        """The helpers for ``emotion``; with the opening's ``setting``, those written for that place, or
        the nearest place that has any (``scenery.neighbours``), so the scene does not jump elsewhere."""
        if self.helpers and self.helpers.get(emotion):
            choices = [(h["helper"], h["setting"], tuple(h["objects"])) for h in self.helpers[emotion]]
        else:
            choices = list(HELPERS[emotion])
        if setting is not None:
            for place in scenery.neighbours(setting):
                if here := [c for c in choices if c[1] == place]:
                    return here
        return choices

    def _safety(self, sentence: str, candidate: Candidate) -> str | None:
        """The learned check's reason to refuse (None: safe); keeps the worst probability for ranking."""
        if self.unsafe is None:
            return None
        answer = self.unsafe(sentence)
        if isinstance(answer, tuple):
            refused, probability, category = answer
            candidate.unsafe_max = max(candidate.unsafe_max, probability)
            return f"classifier: {category} {probability:.2f}" if refused else None
        return "unsafe theme (classifier)" if answer else None

    def _feeling(self, text: str, emotion: str) -> tuple[str | None, float]:
        if self.emotion_of is None:
            return None, 0.0
        answer = self.emotion_of(text)
        if isinstance(answer, tuple):
            found, scores = answer
            return found, softmax_share(scores, emotion)
        return answer, 1.0 if answer == emotion else 0.0

    def _generate(
        self, base: TemplateStory, messages, prompt_text: str, seed: int, telling: Telling, started: float, stream: bool
    ) -> Iterator[Partial]:
        """One candidate, gated sentence by sentence; yields partials only when ``stream`` (a single candidate)."""
        rng = random.Random(seed)
        helper, setting, objects = rng.choice(self.helper_choices(base.emotion, base.scenes[0].setting))
        candidate = Candidate(helper, setting, objects)
        telling.attempts += 1
        pending = f"Then {helper} came and"
        generation_started = time.perf_counter()
        finished = False
        pieces = self.model.stream(messages, pending, self.max_tokens, self.temperature, seed)
        while not finished:
            piece = next(pieces, None)
            if piece is None:  # the model stopped: what is left may be a last complete sentence
                finished = True
                sentences, pending = split_sentences(pending.rstrip())
            else:
                if telling.first_token_ms is None:
                    telling.first_token_ms = (time.perf_counter() - started) * 1000
                telling.tokens += 1
                pending += piece
                sentences, pending = split_sentences(pending)
            for sentence in sentences:
                verdict = gates.check_sentence(
                    sentence, prompt_text, candidate.text, lambda s: self._safety(s, candidate)
                )
                if not verdict.passed:
                    candidate.reason, candidate.refused_sentence = "; ".join(verdict.reasons), sentence
                    break
                candidate.sentences.append(sentence)
                if stream:
                    yield Partial(f"{base.title}\n{base.scenes[0].text}\n{candidate.text}")
            if candidate.reason or len(candidate.sentences) >= 2 or len(candidate.text.split()) >= MAX_SCENE_WORDS:
                break
        telling.generation_s += time.perf_counter() - generation_started
        logprobs = getattr(self.model, "last_logprobs", None)
        if logprobs:
            candidate.mean_logprob = sum(logprobs) / len(logprobs)
        if candidate.reason is None and not candidate.sentences:
            candidate.reason = "no complete sentence"
        if (
            candidate.reason is None
            and self.min_mean_logprob is not None
            and candidate.mean_logprob is not None
            and candidate.mean_logprob < self.min_mean_logprob
        ):
            candidate.reason = f"wandering (mean log-probability {candidate.mean_logprob:.2f})"
        if candidate.reason is None:
            whole = " ".join([base.scenes[0].text, candidate.text, base.scenes[-1].text])
            found, candidate.feeling = self._feeling(whole, base.emotion)
            if found is not None and contrary(found, base.emotion):
                candidate.reason = f"off-emotion (reads as {found})"
        if candidate.reason is None and self.coherence is not None:
            candidate.coherence = self.coherence(base.scenes[0].text, candidate.text, base.emotion)
        telling.candidates.append(candidate)
        if candidate.reason is not None:
            telling.rejections.append(candidate.reason)
            logger.info("candidate %d rejected: %s", telling.attempts, candidate.reason)

    def _comfort_scene(
        self, base: TemplateStory, attributes: Attributes, seed: int, telling: Telling, started: float
    ) -> Iterator[Partial]:
        messages = self.prompt(base, attributes)
        prompt_text = " ".join(m["content"] for m in messages)
        stream = self.candidates == 1
        passing: list[Candidate] = []
        for attempt in range(self.max_attempts):
            yield from self._generate(base, messages, prompt_text, seed + attempt, telling, started, stream)
            if telling.candidates[-1].reason is None:
                passing.append(telling.candidates[-1])
            out_of_time = time.perf_counter() - started > self.budget_s
            if len(passing) >= self.candidates or (passing and out_of_time):
                break
        if not passing:
            return None
        best = max(passing, key=lambda c: c.score)
        telling.chosen = best
        text = best.text
        if len(text.split()) > MAX_SCENE_WORDS:
            text = best.sentences[0]
        text = mend_hero_name(text, base.hero.name)
        if text.count('"') % 2:  # a quotation cut short at the sentence cap
            text += '"'
        if not stream:
            yield Partial(f"{base.title}\n{base.scenes[0].text}\n{text}")
        prompt = template.illustration_prompt(best.setting, best.objects, base.hero, base.emotion)
        return TemplateScene(text, best.setting, best.objects, prompt)


def mend_hero_name(text: str, name: str) -> str:
    """The hero's name as the opening spells it. A small model slips on an unusual name ("Lumin", "Lummy",
    "Lumines" for Lumi): a capitalised word that starts like the name and is mostly the name is the name,
    misspelt. Other words keep their spelling ("Let's" shares one letter with "Lumi", not most of it)."""
    text = re.sub(rf"\b{re.escape(name)}\b", name, text, flags=re.IGNORECASE)

    def mend(match: re.Match) -> str:
        word = match.group(0)
        if word == name or word[0] != name[0]:
            return word
        close = difflib.SequenceMatcher(None, word.lower(), name.lower()).ratio() >= 0.6
        return name if close or word.lower().startswith(name.lower()) else word

    return re.sub(r"\b[A-Z][a-z]+\b", mend, text)


HEAVY_FEELINGS = frozenset({"angry", "disgust", "fear", "sad"})


def contrary(found: str, wanted: str) -> bool:
    """A story that reads as the other side of the child's feeling: glad, surprised or merely calm for a heavy
    feeling (a sad child's story must still read as about that feeling), heavy for a glad, surprised or
    peaceful one. The MiniLM judge reads a calming scene after an angry opening as sad — the
    same side, and the scene a cross child needs — so only the other side is refused; how strongly the story
    reads as the feeling itself still counts in the ranking (``Candidate.feeling``)."""
    if wanted in HEAVY_FEELINGS:
        return found not in HEAVY_FEELINGS
    return found in HEAVY_FEELINGS


def softmax_share(scores: dict[str, float], emotion: str, temperature: float = 0.05) -> float:
    """The share of ``emotion`` among cosine scores, sharpened (0..1)."""
    if emotion not in scores:
        return 0.0
    top = max(scores.values())
    weights = {e: math.exp((s - top) / temperature) for e, s in scores.items()}
    return weights[emotion] / sum(weights.values())


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences in ``text`` and the unfinished rest."""
    sentences, start = [], 0
    for match in SENTENCE_END.finditer(text):
        sentence = text[start : match.end()].strip()
        if sentence:
            sentences.append(sentence)
        start = match.end()
    return sentences, text[start:]
