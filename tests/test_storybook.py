import xml.etree.ElementTree as ET

import pytest

from kiosk.emotion.labels import EMOTIONS
from kiosk.illustrate import storybook
from kiosk.story import bank


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_every_bank_scene_renders_as_valid_svg(emotion):
    for starter in bank.STARTERS[emotion]:
        beat = starter.opening
        root = parse(storybook.render_svg(beat.setting, beat.objects, emotion, None, False))
        assert root.tag.endswith("svg") and root.get("viewBox") == "0 0 768 576"


def test_every_object_the_bank_names_has_a_drawing():
    beats = [s.opening for v in bank.STARTERS.values() for s in v]
    beats += [b for v in bank.COMFORTS.values() for b in v] + [b for v in bank.ENDINGS.values() for b in v]
    named = {obj for beat in beats for obj in beat.objects}
    assert named <= set(storybook.DRAWERS), named - set(storybook.DRAWERS)


def test_picture_follows_the_hero_and_the_mood():
    red = storybook.render_svg("meadow", ["sun"], "happy", "red", True)
    plain = storybook.render_svg("meadow", ["sun"], "happy", None, False)
    assert storybook.COLOURS["red"] in red and storybook.COLOURS["red"] not in plain
    assert red.count("<circle") > plain.count("<circle")  # the glasses
    sad = storybook.render_svg("meadow", ["sun"], "sad", None, False)
    assert storybook.PALETTES["sad"].sky_top in sad and storybook.PALETTES["happy"].sky_top in plain
    night = storybook.render_svg("night", ["moon"], "fear", None, False)
    assert storybook.NIGHT.sky_top in night
