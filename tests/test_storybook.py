import re
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


HOSTILE = [
    '"><script>alert(1)</script>',
    "<svg onload=alert(1)>",
    "a child in a ]]><!-- & ' \"",
    "&amp; &lt; &#0; &bogus;",
    "\x00\x01\x1b[31m",
    "ok\ufffe\ud800",
    "x" * 100_000,
    "",
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=[f"text{i}" for i in range(len(HOSTILE))])
@pytest.mark.parametrize("field", ["setting", "objects", "mood", "clothing_colour"])
def test_a_hostile_word_in_any_field_still_makes_a_well_formed_picture_without_it(field, hostile):
    """As an attacker who controls a scene: every picture must parse as XML and carry none of the text."""
    scene = {"setting": "meadow", "objects": ["sun", "kite"], "mood": "happy", "clothing_colour": "red"}
    scene[field] = [hostile, "sun"] if field == "objects" else hostile
    svg = storybook.render_svg(scene["setting"], scene["objects"], scene["mood"], scene["clothing_colour"], True)
    root = parse(svg)  # raises on anything that is not well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert re.fullmatch(r"A storybook picture: a child in a [a-z]+", root.get("aria-label"))
    if hostile:
        assert hostile not in svg
    assert not any(element.tag.endswith(("script", "foreignObject")) for element in root.iter())
    assert not any(name.startswith("on") for element in root.iter() for name in element.attrib)


def test_every_setting_the_stories_use_is_drawn_and_named_as_itself():
    from kiosk.story import teller

    beats = [s.opening for v in bank.STARTERS.values() for s in v]
    beats += [b for v in bank.COMFORTS.values() for b in v] + [b for v in bank.ENDINGS.values() for b in v]
    settings = {beat.setting for beat in beats} | {s for helpers in teller.HELPERS.values() for _, s, _ in helpers}
    assert settings <= storybook.SETTINGS, settings - storybook.SETTINGS
    for setting in settings:
        label = parse(storybook.render_svg(setting, [], "happy", None, False)).get("aria-label")
        assert label == f"A storybook picture: a child in a {setting}"
