"""The template storyteller: a starter, a comfort and a hopeful ending, varied by a seed.

This is the product's permanent fallback: it always yields a complete, gentle, on-emotion story in a
millisecond, so a child never waits for nothing. The LLM storyteller (later) adds variety on top of it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from kiosk.events import Attributes
from kiosk.story.bank import COMFORTS, ENDINGS, HERO_NAMES, STARTERS, Beat

logger = logging.getLogger(__name__)

GENERATOR = "template"


@dataclass(frozen=True)
class Hero:
    name: str
    looks: str  # for the illustrator: "a child in a red jumper with round glasses"
    clothing_colour: str | None
    glasses: bool


@dataclass(frozen=True)
class TemplateScene:
    text: str
    setting: str
    objects: tuple[str, ...]
    illustration_prompt: str


@dataclass(frozen=True)
class TemplateStory:
    emotion: str
    title: str
    hero: Hero
    scenes: tuple[TemplateScene, ...]


def make_hero(attributes: Attributes, rng: random.Random) -> Hero:
    """An invented hero who gently resembles the child: clothing colour and glasses, nothing more."""
    looks = "a young child" if attributes.age_group in (None, "young child") else f"a {attributes.age_group}"
    if attributes.clothing_colour:
        looks += f" in a {attributes.clothing_colour} jumper"
    if attributes.glasses:
        looks += " with round glasses"
    return Hero(rng.choice(HERO_NAMES), looks, attributes.clothing_colour, bool(attributes.glasses))


def _fill(beat: Beat, hero: Hero) -> str:
    return beat.text.format(hero=hero.name, Hero=hero.name)


def illustration_prompt(setting: str, objects: tuple[str, ...], hero: Hero, emotion: str) -> str:
    return (
        f"storybook illustration, {hero.looks} feeling {emotion}, in a {setting}, with {', '.join(objects)}, "
        "soft colours, gentle, child-friendly"
    )


def tell(
    emotion: str,
    attributes: Attributes | None = None,
    seed: int | None = None,
    scenes: int = 3,
    setting: str | None = None,
) -> TemplateStory:
    """A complete story for ``emotion``; the same seed gives the same story. ``setting`` keeps to the
    openings set there (the comfort fine-tune pairs each written scene with an opening in its own place)."""
    if emotion not in STARTERS:
        raise ValueError(f"no stories for emotion {emotion!r}")
    rng = random.Random(seed)
    hero = make_hero(attributes or Attributes(), rng)
    starters = [s for s in STARTERS[emotion] if setting is None or s.opening.setting == setting]
    if not starters:
        raise ValueError(f"no {emotion} opening is set in {setting!r}")
    starter = rng.choice(starters)
    comforts = list(COMFORTS[emotion])
    rng.shuffle(comforts)
    beats = [starter.opening, *comforts[: max(0, scenes - 2)], rng.choice(ENDINGS[emotion])][:scenes]
    story_scenes = tuple(
        TemplateScene(
            _fill(beat, hero),
            beat.setting,
            beat.objects,
            illustration_prompt(beat.setting, beat.objects, hero, emotion),
        )
        for beat in beats
    )
    return TemplateStory(emotion, starter.title, hero, story_scenes)
