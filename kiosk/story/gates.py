"""Quality and safety gates for generated sentences: nothing reaches the screen before passing them.

- blocklist: words and themes a story for a child in care must not contain. Words with everyday innocent
  senses in a children's story ("kicked the ball", "hit the right note", "a bruise and a plaster", "a
  stable", "a shooting star") are left to the learned classifier, which reads them in context. Besides
  violence and fear the list holds family words (mum, dad, parents...): many of these children are
  separated from their families, so the comfort in a story comes from friends, animals and kind
  grown-ups, never from a parent.
- learned safety: a classifier fine-tuned on the team's safety corpus reads what the list cannot know
  (paraphrases: "they took a bite of her head"); see ``kiosk/safety``.
- prompt echo: the small model repeating the instructions instead of telling the story.
- repetition: looping phrases.
- on-topic: the scene keeps the story's hero.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

BLOCKLIST = re.compile(
    r"\b(kill\w*|die[ds]?|dying|dead|death|blood\w*|guns?|gunfire|knife|knives|sword\w*|weapon\w*|stab(s|bed|bing)?|"
    r"shoot(ing)?(?!\s+stars?)|shot (him|her|them|it)|"
    r"punch(es|ed|ing)?(?!\s+(a\s+)?holes?)|slap\w*|smack\w*|hurt(s|ing)?|pain|"
    r"monster\w*|ghost\w*|demon\w*|devil\w*|witch\w*|nightmare\w*|terrif\w*|horror\w*|evil|villain\w*|"
    r"hate\w*|stupid|idiot|dumb|ugly|fat|shut up|"
    r"punish\w*|prison|jail|police|locked|"
    r"mums?|mummy|moms?|mommy|mothers?|dads?|daddy|fathers?|parents?|orphan\w*|adopt\w*|abandon\w*|"
    r"alone forever|nobody loves|unloved|"
    r"kiss\w*|boyfriend|girlfriend|sexy|naked|beer|wine|drunk|drug\w*|cigarette\w*|smok\w*|pills?|"
    r"god|jesus|church|pray\w*)\b",
    re.IGNORECASE,
)

INSTRUCTION_MARKERS = re.compile(
    r"(continue (this|the) story|write (a|two|one)|short sentences|simple words|for a (young child|teenager)|"
    r"as an ai|assistant|<\|im_|^user:|^system:|\bprompt\b|\binstruction)",
    re.IGNORECASE,
)


def blocked_words(text: str) -> list[str]:
    return sorted({m.group(0).lower() for m in BLOCKLIST.finditer(text)})


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def echo_ratio(generated: str, prompt: str, n: int = 4) -> float:
    """Share of the generated word 4-grams that appear in the prompt."""
    generated_grams = ngrams(words(generated), n)
    if not generated_grams:
        return 0.0
    prompt_grams = set(ngrams(words(prompt), n))
    return sum(g in prompt_grams for g in generated_grams) / len(generated_grams)


def is_echo(generated: str, prompt: str) -> bool:
    return bool(INSTRUCTION_MARKERS.search(generated)) or echo_ratio(generated, prompt) > 0.4


def is_repetitive(text: str) -> bool:
    """Looping output: repeated trigrams dominate, or a sentence appears twice."""
    grams = ngrams(words(text), 3)
    if len(grams) >= 6 and len(set(grams)) / len(grams) < 0.75:
        return True
    sentences = [s.strip().lower() for s in re.split(r"[.!?]+", text) if len(s.strip()) > 8]
    return len(sentences) != len(set(sentences))


def repeats_previous(sentence: str, previous: str) -> bool:
    """The sentence's words already stand, in order, in what came before ("said hello. said hello.")."""
    new, old = " ".join(words(sentence)), " ".join(words(previous))
    return len(new.split()) >= 2 and f" {new} " in f" {old} "


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def check_sentence(
    sentence: str, prompt: str, previous: str, unsafe: Callable[[str], str | bool | None] | None
) -> Verdict:
    """All gates for one generated sentence, in the context of what came before it.

    ``unsafe`` is the learned safety check: it answers a reason (or True) for an unsafe sentence.
    """
    reasons = []
    if blocked := blocked_words(sentence):
        reasons.append(f"blocklist: {', '.join(blocked)}")
    if is_echo(sentence, prompt):
        reasons.append("prompt echo")
    if is_repetitive(f"{previous} {sentence}") or repeats_previous(sentence, previous):
        reasons.append("repetition")
    if unsafe is not None and not reasons and (found := unsafe(sentence)):
        reasons.append(found if isinstance(found, str) else "unsafe theme")
    return Verdict(not reasons, reasons)
