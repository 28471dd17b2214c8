"""Where a story happens, and which places a scene may move to without the child noticing a jump.

The opening sets the place (a rainy window in a room, a balloon in the sky). A comfort scene that moves
the hero somewhere else ("Lumi sat on the grass" after a bedroom opening, a blanket in a meadow) is the
commonest incoherence a reader finds, so the storyteller offers the model only helpers whose scenes were
written for the opening's place, or failing that one next to it.
"""

from __future__ import annotations

SETTINGS = ("meadow", "garden", "forest", "river", "hill", "room", "night", "sky")

# the opening's place -> places a comfort scene may use, nearest first (the place itself always first)
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "meadow": ("meadow", "garden", "hill"),
    "garden": ("garden", "meadow"),
    "forest": ("forest", "meadow"),
    "river": ("river", "meadow"),
    "hill": ("hill", "meadow"),
    "room": ("room", "night"),
    "night": ("night", "room"),
    "sky": ("sky", "meadow", "hill"),
}


def neighbours(setting: str) -> tuple[str, ...]:
    """The places a scene after an opening set in ``setting`` may use (unknown places: only themselves)."""
    return NEIGHBOURS.get(setting, (setting,))
