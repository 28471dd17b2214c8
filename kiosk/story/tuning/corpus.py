"""The comfort-scene corpus (``corpus/comfort/<emotion>.jsonl``) and the training examples made from it.

Each scene is what the storyteller's middle scene should be: it starts with the same prefill the kiosk
gives the model ("Then a gentle bear came and"), so the fine-tune learns to continue exactly the prompt it
will see. The prompt around it is the kiosk's own (``Storyteller.prompt``) with a template opening for the
scene's emotion and an invented hero, drawn with a fixed seed so a rebuild is identical.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiosk.emotion.labels import EMOTIONS
from kiosk.events import Attributes
from kiosk.story import template
from kiosk.story.gates import blocked_words
from kiosk.story.scenery import SETTINGS

logger = logging.getLogger(__name__)

CORPUS_DIR = Path(__file__).resolve().parents[3] / "corpus" / "comfort"
HERO = "{hero}"


class ComfortScene(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    emotion: str
    helper: str = Field(min_length=3, max_length=60)
    setting: str
    objects: tuple[str, ...] = Field(min_length=1, max_length=3)
    text: str = Field(min_length=20, max_length=400)

    @field_validator("setting")
    @classmethod
    def known_setting(cls, value: str) -> str:
        if value not in SETTINGS:
            raise ValueError(f"setting {value!r} is not one of {SETTINGS}")
        return value

    @model_validator(mode="after")
    def starts_with_prefill(self) -> ComfortScene:
        if not self.text.startswith(self.prefill):
            raise ValueError(f"text must start with {self.prefill!r}")
        if blocked := blocked_words(self.text.replace(HERO, "Ada")):
            raise ValueError(f"blocked words {blocked}")
        return self

    @property
    def prefill(self) -> str:
        return f"Then {self.helper} came and"

    @property
    def continuation(self) -> str:
        """What the model must write after the prefill."""
        return self.text[len(self.prefill) :]


def read_scenes(corpus_dir: Path = CORPUS_DIR) -> list[ComfortScene]:
    scenes = []
    for emotion in EMOTIONS:
        path = corpus_dir / f"{emotion}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"no comfort scenes for {emotion} at {path}")
        # <emotion>.jsonl, then each later writer's <emotion>-<n>.jsonl
        for part in [path, *sorted(corpus_dir.glob(f"{emotion}-*.jsonl"))]:
            for number, line in enumerate(part.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        scenes.append(ComfortScene(emotion=emotion, **json.loads(line)))
                    except (ValueError, TypeError) as exc:
                        raise ValueError(f"{part.name}:{number}: {exc}") from None
    return scenes


def is_held_out(scene: ComfortScene, share: float = 0.1) -> bool:
    digest = hashlib.sha256(scene.text.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def training_example(scene: ComfortScene, rng: random.Random) -> tuple[list[dict[str, str]], str, str]:
    """(chat messages, prefill, continuation) exactly as the kiosk will prompt, with a drawn hero and an
    opening set in the scene's own place: the model learns to stay where the opening put the hero (the
    kiosk offers it helpers written for that place)."""
    from kiosk.story.teller import Storyteller

    base = template.tell(scene.emotion, Attributes(), seed=rng.randrange(1 << 30), setting=scene.setting)
    messages = Storyteller(None).prompt(base, Attributes())
    return messages, scene.prefill, scene.continuation.replace(HERO, base.hero.name)


# Helpers without a body that can sit beside a child (sky, weather, things, fish): the writers used them well
# ("a whale-shaped cloud"), but a 135M model asked to continue "Then a gentle rain came and" writes nonsense
# ("dropped a small stone on the grass"). They stay in training; the teller is not offered them.
DISEMBODIED = frozenset(
    [
        "cloud",
        "raincloud",
        "star",
        "moon",
        "half-moon",
        "comet",
        "sun",
        "sunbeam",
        "moonbeam",
        "sunshine",
        "sunset",
        "sunrise",
        "sunshower",
        "shower",
        "rain",
        "raindrop",
        "dewdrop",
        "mist",
        "breeze",
        "wind",
        "snowflake",
        "snowfall",
        "rainbow",
        "aurora",
        "sky",
        "night",
        "lights",
        "brook",
        "balloon",
        "kite",
        "pinwheel",
        "chime",
        "clock",
        "feather",
        "bubble",
        "leaf",
        "seed",
        "dandelion",
        "sunflower",
        "boat",
        "aeroplane",
        "train",
        "blanket",
        "quilt",
        "night-light",
        "blower",
        "fish",
        "goldfish",
        "trout",
        "carp",
        "catfish",
        "salmon",
    ]
)


def embodied(helper: str) -> bool:
    """A helper that can come, sit beside the child and do something with its paws or hands."""
    return helper.split()[-1].lower() not in DISEMBODIED


def helpers_by_emotion(scenes: list[ComfortScene]) -> dict[str, list[dict]]:
    """The helpers the tuned model learned, with what the picture shows: the teller draws from these (only
    the embodied ones)."""
    table: dict[str, dict[str, dict]] = {e: {} for e in EMOTIONS}
    for scene in scenes:
        if not embodied(scene.helper):
            continue
        table[scene.emotion].setdefault(
            scene.helper, {"helper": scene.helper, "setting": scene.setting, "objects": list(scene.objects)}
        )
    return {e: sorted(v.values(), key=lambda h: h["helper"]) for e, v in table.items()}
