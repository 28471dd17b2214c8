"""The offline storybook illustrator: an SVG picture drawn from a scene, no model weights needed.

It paints the scene's setting in the emotion's palette, the objects the scene names, and a child hero
whose face shows the scene's mood, wearing the hero's clothing colour (and glasses when the hero has
them). It is the kiosk's default illustrator wherever no diffusion weights are installed, and the safe
picture that replaces any diffusion image the safety check rejects.

A scene arrives from the bus, so nothing in it is trusted as markup: setting, objects, mood and colour are
looked up in the fixed sets below (an unknown one gets the default drawing), and the only words that enter
the SVG, its accessible label, are escaped as an XML attribute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

ILLUSTRATOR = "storybook (offline)"


@dataclass(frozen=True)
class Palette:
    sky_top: str
    sky_bottom: str
    ground: str
    accent: str


# Calm, soft colours: warm for joy, cool but gentle for sadness and fear, never harsh red.
PALETTES: dict[str, Palette] = {
    "angry": Palette("#f6c6a8", "#fde7d6", "#b9d98f", "#e8875f"),
    "disgust": Palette("#cfe8d0", "#eef7e8", "#9fcf8f", "#7bb37a"),
    "fear": Palette("#b9c3ea", "#e3e6f7", "#a3c99a", "#7d8fd6"),
    "happy": Palette("#9fd8f7", "#e4f5fd", "#9bd67c", "#ffc93c"),
    "sad": Palette("#b5cbe0", "#e2ebf3", "#a9cc9c", "#6f9cc9"),
    "surprise": Palette("#d9c2f0", "#f5ecfc", "#a7d98e", "#f39bc5"),
    "neutral": Palette("#c4e3ef", "#eef7fa", "#a8d49a", "#8cc0a8"),
}
NIGHT = Palette("#1f2a56", "#4a5a92", "#3f6a4f", "#ffe08a")

COLOURS: dict[str, str] = {
    "red": "#e15b5b",
    "orange": "#f29b45",
    "yellow": "#f5d04c",
    "green": "#5fb36a",
    "blue": "#4f8fd8",
    "purple": "#9a6fd1",
    "pink": "#f09cc0",
    "brown": "#9b6b43",
    "black": "#3b3b3b",
    "white": "#f4f4f4",
    "grey": "#9a9a9a",
    "gray": "#9a9a9a",
}

W, H = 768, 576
HORIZON = 390


def _sun(x: float, y: float, p: Palette) -> str:
    rays = "".join(
        f'<line x1="{x}" y1="{y - 58}" x2="{x}" y2="{y - 74}" stroke="#ffc93c" stroke-width="6" '
        f'stroke-linecap="round" transform="rotate({a} {x} {y})"/>'
        for a in range(0, 360, 45)
    )
    return f'<g>{rays}<circle cx="{x}" cy="{y}" r="44" fill="#ffd95a"/></g>'


def _cloud(x: float, y: float, p: Palette) -> str:
    return (
        f'<g fill="#ffffff" opacity="0.92"><circle cx="{x - 34}" cy="{y + 6}" r="26"/>'
        f'<circle cx="{x}" cy="{y - 8}" r="34"/><circle cx="{x + 36}" cy="{y + 6}" r="24"/>'
        f'<rect x="{x - 60}" y="{y + 4}" width="120" height="28" rx="14"/></g>'
    )


def _rain(x: float, y: float, p: Palette) -> str:
    drops = "".join(
        f'<path d="M{x + dx} {y + dy} q-5 10 0 14 q5 -4 0 -14z" fill="#7fb2e5"/>'
        for dx, dy in ((-40, 40), (-10, 60), (20, 35), (45, 70), (-25, 95), (10, 100))
    )
    return _cloud(x, y, p) + drops


def _moon(x: float, y: float, p: Palette) -> str:
    return (
        f'<circle cx="{x}" cy="{y}" r="40" fill="#fff2b3"/>'
        f'<circle cx="{x + 18}" cy="{y - 10}" r="36" fill="{p.sky_top}"/>'
    )


def _star(x: float, y: float, p: Palette) -> str:
    pts = " ".join(f"{x + r * _c(i)},{y + r * _s(i)}" for i, r in zip(range(10), [22, 9] * 5, strict=True))
    return f'<polygon points="{pts}" fill="#ffe27a" stroke="#f5c542" stroke-width="2"/>'


def _c(i: int) -> float:
    return round(math.cos(math.pi / 5 * i - math.pi / 2), 3)


def _s(i: int) -> float:
    return round(math.sin(math.pi / 5 * i - math.pi / 2), 3)


def _kite(x: float, y: float, p: Palette) -> str:
    return (
        f'<polygon points="{x},{y - 45} {x + 32},{y} {x},{y + 50} {x - 32},{y}" fill="{p.accent}"/>'
        f'<path d="M{x} {y + 50} q20 40 -10 70 q-25 30 10 60" stroke="#666" fill="none" stroke-width="2"/>'
    )


def _balloon(x: float, y: float, p: Palette) -> str:
    return (
        f'<ellipse cx="{x}" cy="{y}" rx="30" ry="38" fill="#e8685f"/>'
        f'<path d="M{x} {y + 38} q-10 30 5 60" stroke="#666" fill="none" stroke-width="2"/>'
    )


def _flower(x: float, y: float, p: Palette) -> str:
    petals = "".join(
        f'<circle cx="{x + dx}" cy="{y + dy}" r="11" fill="{p.accent}"/>'
        for dx, dy in ((0, -14), (14, 0), (0, 14), (-14, 0))
    )
    return (
        f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y + 60}" stroke="#4f9a4a" stroke-width="5"/>'
        f'{petals}<circle cx="{x}" cy="{y}" r="9" fill="#ffd95a"/>'
    )


def _tree(x: float, y: float, p: Palette) -> str:
    return (
        f'<rect x="{x - 12}" y="{y}" width="24" height="80" fill="#9b6b43"/>'
        f'<circle cx="{x}" cy="{y - 20}" r="55" fill="#5fae64"/>'
        f'<circle cx="{x - 35}" cy="{y + 5}" r="35" fill="#6cbb6f"/>'
        f'<circle cx="{x + 35}" cy="{y + 5}" r="35" fill="#6cbb6f"/>'
    )


def _butterfly(x: float, y: float, p: Palette) -> str:
    return (
        f'<ellipse cx="{x - 14}" cy="{y}" rx="14" ry="20" fill="{p.accent}"/>'
        f'<ellipse cx="{x + 14}" cy="{y}" rx="14" ry="20" fill="{p.accent}"/>'
        f'<rect x="{x - 3}" y="{y - 16}" width="6" height="32" rx="3" fill="#555"/>'
    )


def _boat(x: float, y: float, p: Palette) -> str:
    return (
        f'<path d="M{x - 50} {y} h100 l-20 28 h-60z" fill="#f4f4f4" stroke="#888" stroke-width="2"/>'
        f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y - 60}" stroke="#777" stroke-width="3"/>'
        f'<path d="M{x} {y - 58} l38 42 h-38z" fill="{p.accent}"/>'
    )


def _rainbow(x: float, y: float, p: Palette) -> str:
    bands = ("#f28b82", "#fbbc75", "#fff475", "#ccff90", "#a7ffeb", "#aecbfa", "#d7aefb")
    return "".join(
        f'<path d="M{x - 140 + i * 10} {y + 60} a{140 - i * 10} {140 - i * 10} 0 0 1 '
        f'{280 - i * 20} 0" stroke="{c}" stroke-width="10" fill="none" opacity="0.85"/>'
        for i, c in enumerate(bands)
    )


def _heart(x: float, y: float, p: Palette) -> str:
    return (
        f'<path d="M{x} {y + 22} C{x - 40} {y - 5} {x - 22} {y - 38} {x} {y - 16} '
        f'C{x + 22} {y - 38} {x + 40} {y - 5} {x} {y + 22}z" fill="#f08a9b"/>'
    )


def _lantern(x: float, y: float, p: Palette) -> str:
    return (
        f'<circle cx="{x}" cy="{y}" r="46" fill="#ffe9a8" opacity="0.35"/>'
        f'<rect x="{x - 18}" y="{y - 24}" width="36" height="48" rx="8" fill="#ffd95a" stroke="#b98b2f" '
        f'stroke-width="3"/><rect x="{x - 8}" y="{y - 34}" width="16" height="10" fill="#b98b2f"/>'
    )


def _animal(colour: str, ears: str) -> Callable[[float, float, Palette], str]:
    def draw(x: float, y: float, p: Palette) -> str:
        ear_shapes = {
            "round": f'<circle cx="{x - 20}" cy="{y - 24}" r="11" fill="{colour}"/>'
            f'<circle cx="{x + 20}" cy="{y - 24}" r="11" fill="{colour}"/>',
            "long": f'<ellipse cx="{x - 10}" cy="{y - 44}" rx="7" ry="22" fill="{colour}"/>'
            f'<ellipse cx="{x + 10}" cy="{y - 44}" rx="7" ry="22" fill="{colour}"/>',
            "pointy": f'<polygon points="{x - 26},{y - 14} {x - 16},{y - 42} {x - 6},{y - 22}" fill="{colour}"/>'
            f'<polygon points="{x + 26},{y - 14} {x + 16},{y - 42} {x + 6},{y - 22}" fill="{colour}"/>',
            "none": "",
        }[ears]
        return (
            f'<ellipse cx="{x}" cy="{y + 34}" rx="30" ry="28" fill="{colour}"/>{ear_shapes}'
            f'<circle cx="{x}" cy="{y}" r="26" fill="{colour}"/>'
            f'<circle cx="{x - 9}" cy="{y - 4}" r="3.5" fill="#333"/><circle cx="{x + 9}" cy="{y - 4}" '
            f'r="3.5" fill="#333"/><path d="M{x - 7} {y + 8} q7 6 14 0" stroke="#333" fill="none" '
            f'stroke-width="2"/>'
        )

    return draw


def _bird(x: float, y: float, p: Palette) -> str:
    return (
        f'<path d="M{x - 26} {y} q13 -16 26 0 q13 -16 26 0" stroke="#555" stroke-width="4" '
        f'fill="none" stroke-linecap="round"/>'
    )


def _simple(shape: str) -> Callable[[float, float, Palette], str]:
    def draw(x: float, y: float, p: Palette) -> str:
        return shape.format(x=x, y=y, accent=p.accent, x20=x - 20, y20=y - 20, x40=x - 40, y30=y - 30)

    return draw


DRAWERS: dict[str, Callable[[float, float, Palette], str]] = {
    "sun": _sun,
    "cloud": _cloud,
    "rain": _rain,
    "moon": _moon,
    "star": _star,
    "kite": _kite,
    "balloon": _balloon,
    "flower": _flower,
    "tree": _tree,
    "butterfly": _butterfly,
    "boat": _boat,
    "rainbow": _rainbow,
    "heart": _heart,
    "lantern": _lantern,
    "firefly": _lantern,
    "bird": _bird,
    "owl": _animal("#b08968", "pointy"),
    "dog": _animal("#d9a066", "round"),
    "bear": _animal("#a47551", "round"),
    "rabbit": _animal("#eeeeee", "long"),
    "frog": _animal("#7cc46b", "none"),
    "squirrel": _animal("#c27c4a", "pointy"),
    "dragon": _animal("#8fcf7a", "pointy"),
    "gift": _simple(
        '<rect x="{x40}" y="{y30}" width="80" height="60" rx="6" fill="{accent}"/>'
        '<rect x="{x}" y="{y30}" width="8" height="60" fill="#fff"/>'
        '<rect x="{x40}" y="{y}" width="80" height="8" fill="#fff"/>'
    ),
    "book": _simple(
        '<rect x="{x40}" y="{y20}" width="80" height="50" rx="4" fill="{accent}"/>'
        '<line x1="{x}" y1="{y20}" x2="{x}" y2="{y}" stroke="#fff" stroke-width="3"/>'
    ),
    "blanket": _simple('<rect x="{x40}" y="{y20}" width="80" height="46" rx="12" fill="#f3b7c8"/>'),
    "cushion": _simple('<rect x="{x40}" y="{y20}" width="80" height="44" rx="20" fill="#b9a7e8"/>'),
    "bubbles": _simple(
        '<g fill="none" stroke="#7fb2e5" stroke-width="3"><circle cx="{x}" cy="{y}" r="14"/>'
        '<circle cx="{x40}" cy="{y20}" r="10"/><circle cx="{x20}" cy="{y30}" r="7"/></g>'
    ),
    "puddle": _simple('<ellipse cx="{x}" cy="{y}" rx="60" ry="14" fill="#9cc3e6"/>'),
    "apple": _simple(
        '<circle cx="{x}" cy="{y}" r="22" fill="#e8685f"/>'
        '<rect x="{x}" y="{y30}" width="4" height="12" fill="#7a5230"/>'
    ),
    "bowl": _simple('<path d="M{x40} {y} a40 30 0 0 0 80 0z" fill="#d9e9f5" stroke="#888"/>'),
    "volcano": _simple('<polygon points="{x40},{y} {x20},{y30} {x},{y30} {x},{y}" fill="#b58a6a"/>'),
    "window": _simple(
        '<rect x="{x40}" y="{y30}" width="90" height="80" fill="#cfe6f7" stroke="#fff" stroke-width="8"/>'
    ),
    "door": _simple('<rect x="{x40}" y="{y30}" width="70" height="120" rx="6" fill="#b98b5e"/>'),
}

AIRBORNE = frozenset(
    ("sun", "cloud", "rain", "moon", "star", "kite", "balloon", "rainbow", "bird", "butterfly", "firefly")
)
# where a scene may happen; anything else is drawn (and described) as the default
SETTINGS: frozenset[str] = frozenset(("meadow", "garden", "park", "forest", "hill", "river", "room", "sky", "night"))
DEFAULT_SETTING = "meadow"

SKY_SLOTS = ((110, 95), (640, 95), (380, 70))
GROUND_SLOTS = ((120, 420), (650, 440), (560, 330))


def _background(setting: str, p: Palette) -> str:
    sky = (
        f'<defs><linearGradient id="sky{p.sky_top[1:]}" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color='
        f'"{p.sky_top}"/><stop offset="1" stop-color="{p.sky_bottom}"/></linearGradient></defs>'
        f'<rect width="{W}" height="{H}" fill="url(#sky{p.sky_top[1:]})"/>'
    )
    if setting == "room":
        return (
            sky + f'<rect y="{HORIZON}" width="{W}" height="{H - HORIZON}" fill="#e9d3b5"/>'
            f'<rect x="40" y="{HORIZON + 60}" width="{W - 80}" height="90" rx="40" fill="{p.accent}" '
            'opacity="0.35"/>'
        )
    if setting == "river":
        return (
            sky + f'<rect y="{HORIZON}" width="{W}" height="{H - HORIZON}" fill="{p.ground}"/>'
            f'<path d="M0 {HORIZON + 40} q200 -30 400 0 t400 0 v70 q-200 30 -400 0 t-400 0z" '
            'fill="#8cc4ea"/>'
        )
    if setting == "hill":
        return sky + f'<path d="M0 {HORIZON + 20} q384 -140 {W} 0 V{H} H0z" fill="{p.ground}"/>'
    if setting == "sky":
        return sky + f'<rect y="{HORIZON + 80}" width="{W}" height="{H - HORIZON}" fill="{p.ground}"/>'
    ground = f'<rect y="{HORIZON}" width="{W}" height="{H - HORIZON}" fill="{p.ground}"/>'
    if setting == "forest":
        ground += "".join(_tree(x, HORIZON - 30, p) for x in (60, 250, 520, 720))
    return sky + ground


MOUTHS = {
    "happy": "M-16 14 q16 16 32 0",
    "surprise": "",
    "sad": "M-14 20 q14 -12 28 0",
    "angry": "M-14 18 q14 -6 28 0",
    "fear": "M-12 18 q12 -6 24 0",
    "disgust": "M-14 16 q14 -4 28 2",
    "neutral": "M-12 16 h24",
}


def _hero(x: float, y: float, mood: str, clothing: str, glasses: bool) -> str:
    """A friendly child figure standing at (x, y = feet)."""
    head_y = y - 190
    face = f"translate({x} {head_y})"
    mouth = (
        '<ellipse cx="0" cy="18" rx="8" ry="10" fill="#7a3b3b"/>'
        if mood == "surprise"
        else f'<path d="{MOUTHS.get(mood, MOUTHS["neutral"])}" stroke="#7a3b3b" stroke-width="4" '
        'fill="none" stroke-linecap="round"/>'
    )
    brows = (
        '<path d="M-26 -20 l16 6 M26 -20 l-16 6" stroke="#5a3b2a" stroke-width="4" stroke-linecap="round"/>'
        if mood == "angry"
        else '<path d="M-26 -14 l16 -6 M26 -14 l-16 -6" stroke="#5a3b2a" stroke-width="4" stroke-linecap="round"/>'
        if mood in ("sad", "fear")
        else ""
    )
    specs = (
        '<g fill="none" stroke="#333" stroke-width="3"><circle cx="-16" cy="-4" r="12"/>'
        '<circle cx="16" cy="-4" r="12"/><line x1="-4" y1="-4" x2="4" y2="-4"/></g>'
        if glasses
        else ""
    )
    tear = '<path d="M20 6 q-5 9 0 12 q5 -3 0 -12z" fill="#7fb2e5"/>' if mood == "sad" else ""
    return (
        f'<g><rect x="{x - 30}" y="{y - 70}" width="22" height="70" rx="10" fill="#5b6b8c"/>'
        f'<rect x="{x + 8}" y="{y - 70}" width="22" height="70" rx="10" fill="#5b6b8c"/>'
        f'<path d="M{x - 45} {y - 60} q45 -110 90 0z" fill="{clothing}"/>'
        f'<rect x="{x - 70}" y="{y - 140}" width="26" height="70" rx="13" fill="{clothing}" '
        f'transform="rotate(20 {x - 57} {y - 140})"/>'
        f'<rect x="{x + 44}" y="{y - 140}" width="26" height="70" rx="13" fill="{clothing}" '
        f'transform="rotate(-20 {x + 57} {y - 140})"/>'
        f'<g transform="{face}"><circle r="50" fill="#f2c9a0"/>'
        '<path d="M-50 -6 q0 -56 50 -56 q50 0 50 56 q-20 -30 -50 -30 q-30 0 -50 30z" fill="#6b4a32"/>'
        '<circle cx="-16" cy="-4" r="5" fill="#333"/><circle cx="16" cy="-4" r="5" fill="#333"/>'
        '<circle cx="-30" cy="14" r="8" fill="#f4a7a7" opacity="0.6"/>'
        f'<circle cx="30" cy="14" r="8" fill="#f4a7a7" opacity="0.6"/>{brows}{specs}{mouth}{tear}</g></g>'
    )


def render_svg(
    setting: str,
    objects: list[str] | tuple[str, ...],
    mood: str,
    clothing_colour: str | None,
    glasses: bool,
    seed: int = 0,
) -> str:
    """One scene as an SVG document (768×576); every input is looked up in a fixed set, never pasted in."""
    setting = setting if setting in SETTINGS else DEFAULT_SETTING
    mood = mood if mood in PALETTES else "neutral"
    palette = NIGHT if setting == "night" else PALETTES[mood]
    rng = random.Random(seed)
    clothing = COLOURS.get(str(clothing_colour or "").lower()) or palette.accent
    parts = [_background(setting, palette)]
    if setting == "night":
        parts += [_star(rng.randint(30, W - 30), rng.randint(20, 220), palette) for _ in range(6)]
    sky_slots, ground_slots = list(SKY_SLOTS), list(GROUND_SLOTS)
    for name in objects:
        drawer = DRAWERS.get(name, _star)
        slots = sky_slots if name in AIRBORNE and sky_slots else ground_slots or sky_slots
        if not slots:
            break
        x, y = slots.pop(0)
        parts.append(drawer(x, y, palette))
    parts.append(_hero(W / 2 - 40, HORIZON + 120, mood, clothing, bool(glasses)))
    body = "".join(parts)
    label = quoteattr(f"A storybook picture: a child in a {setting}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img" aria-label={label}>{body}</svg>'
    )
