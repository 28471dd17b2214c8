"""Synthetic 640×480 camera scenes for the detection benchmark, built without any child's photo.

Why synthetic: the children the camera misses (crying behind a hand, tilted, leaning in, far back) cannot be
photographed for a test set. So real adult faces (FER2013 Training crops, the four public-domain portraits in
``../shared/data/faces/``, scikit-image's astronaut) are composited into drawn playrooms with the things that
hide children's faces: skin-toned hands, sleeves, hair, toys; rolled, yaw-warped, blurred, darkened, cut by
the frame edge, very close, small or several at once. Face-free frames (rooms, toys, drawings of faces on a
wall) measure false alarms. Every scene is drawn from a seed, so a figure can be reproduced; the frames live
in memory only.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from kiosk.camera import sources

logger = logging.getLogger(__name__)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FER_TRAINING = SHARED / "fer2013" / "fer2013_training.npz"
FER_SPLITS = {"training": FER_TRAINING, "publictest": SHARED / "fer2013" / "fer2013_publictest.npz"}
PORTRAIT_DIR = SHARED / "faces"
WIDTH, HEIGHT = 640, 480

# Face boxes in the portraits (original pixels): forehead to chin, ear to ear, checked by eye against
# dlib HOG and YuNet boxes on the clean photos.
PORTRAIT_FACES: dict[str, list[tuple[int, int, int, int]]] = {
    "obama.jpg": [(362, 100, 260, 316)],
    "biden.jpg": [(430, 180, 300, 380)],
    "biden2.jpg": [(440, 170, 420, 580)],
    "two_people.jpg": [(238, 35, 152, 190), (792, 55, 155, 200)],
}
ASTRONAUT_FACE = (176, 66, 90, 110)

FACE_CONDITIONS = (
    "clean",
    "hand",
    "sleeve",
    "hair",
    "toy",
    "roll",
    "yaw",
    "blur",
    "low_light",
    "edge_cut",
    "close_up",
    "small",
    "several",
    "hand_tilted_close",
)
FREE_CONDITIONS = ("free_room", "free_toys", "free_drawings")
OCCLUSIONS = ("hand", "sleeve", "hair", "toy")

SKIN_TONES_BGR = [(189, 208, 241), (150, 180, 224), (115, 150, 198), (80, 115, 165), (55, 80, 120), (40, 58, 88)]
HAIR_BGR = [(20, 20, 25), (25, 45, 80), (40, 70, 120), (60, 110, 170), (15, 25, 40)]


@dataclass
class Scene:
    frame: np.ndarray  # BGR, HEIGHT×WIDTH
    condition: str
    faces: list[tuple[int, int, int, int]] = field(default_factory=list)  # ground truth, clipped to the frame
    sources: list[str] = field(default_factory=list)  # "fer" or "photo", one per face
    labels: list[int | None] = field(default_factory=list)  # FER2013 emotion index (photos: None), one per face


@dataclass
class Head:
    """A face patch with its face box (patch pixels) and an alpha mask that feathers its edge."""

    image: np.ndarray
    alpha: np.ndarray
    box: tuple[int, int, int, int]
    source: str
    label: int | None = None  # the FER2013 emotion of the face, for the emotion figures on covered faces


def shared_data_available() -> bool:
    return FER_TRAINING.exists() and PORTRAIT_DIR.is_dir()


@cache
def fer_faces(split: str = "training") -> tuple[np.ndarray, np.ndarray]:
    """FER2013 images and their emotion labels; the emotion figures use PublicTest, which the model never saw."""
    with np.load(FER_SPLITS[split]) as data:
        return data["images"], data["labels"]


@cache
def photo_heads() -> tuple[tuple[np.ndarray, tuple[int, int, int, int]], ...]:
    """Head-and-shoulders crops around each real face (2× the face box), with the face box in the crop."""
    photos = [(sources.sample_photo(), ASTRONAUT_FACE)]
    if PORTRAIT_DIR.is_dir():
        for name, boxes in PORTRAIT_FACES.items():
            image = cv2.imread(str(PORTRAIT_DIR / name))
            if image is not None:
                photos += [(image, box) for box in boxes]
    heads = []
    for image, (x, y, w, h) in photos:
        cx, cy, side = x + w // 2, y + h // 2, int(max(w, h) * 1.9)
        x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
        crop = image[y0 : y0 + side, x0 : x0 + side].copy()
        heads.append((crop, (x - x0, y - y0, w, h)))
    return tuple(heads)


def feathered_ellipse(h: int, w: int, fill: float = 0.96) -> np.ndarray:
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h // 2), (int(w * fill / 2), int(h * fill / 2)), 0, 0, 360, 1.0, -1)
    k = max(3, (min(h, w) // 12) | 1)
    return cv2.GaussianBlur(alpha, (k, k), 0)


def soft_mask(shape: tuple[int, ...], centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    """An ellipse that fades out over a few pixels: a head outline with no hard pasted edge."""
    alpha = np.zeros(shape, np.float32)
    cv2.ellipse(alpha, centre, axes, 0, 0, 360, 1.0, -1)
    k = max(3, (min(axes) // 8) | 1)
    return cv2.GaussianBlur(alpha, (k, k), 0)


def make_head(rng: np.random.Generator, face_px: int, fer_split: str = "training") -> Head:
    """A face about ``face_px`` tall: a FER2013 crop (tinted to a skin tone, framed by hair) or a real photo."""
    use_photo = not FER_TRAINING.exists() or rng.random() < 0.3
    if use_photo:
        crop, (bx, by, bw, bh) = photo_heads()[rng.integers(len(photo_heads()))]
        scale = face_px / bh
        image = cv2.resize(
            crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        box = (int(bx * scale), int(by * scale), int(bw * scale), int(bh * scale))
        centre, axes = (box[0] + box[2] // 2, box[1] + int(box[3] * 0.42)), (int(box[2] * 0.8), int(box[3] * 0.72))
        return Head(image, soft_mask(image.shape[:2], centre, axes), box, "photo")
    faces, labels = fer_faces(fer_split)
    pick = rng.integers(len(faces))
    grey = faces[pick]
    tone = np.array(SKIN_TONES_BGR[rng.integers(len(SKIN_TONES_BGR))], np.float32) / 255.0
    tinted = np.clip(grey[..., None].astype(np.float32) * (0.55 + 0.9 * tone), 0, 255).astype(np.uint8)
    side = int(face_px * 1.05)  # FER crops are tight: the face fills about 95% of the crop
    face = cv2.resize(tinted, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = int(side * 0.3)
    image = np.zeros((side + 2 * pad, side + 2 * pad, 3), np.uint8)
    hair = SKIN_TONES_BGR[0] if rng.random() < 0.1 else HAIR_BGR[rng.integers(len(HAIR_BGR))]
    centre, axes = (side // 2 + pad, side // 2 + pad - pad // 3), (side // 2 + pad // 2, side // 2 + pad // 2)
    cv2.ellipse(image, centre, axes, 0, 0, 360, hair, -1)
    alpha = soft_mask(image.shape[:2], centre, axes)
    face_alpha = feathered_ellipse(side, side, fill=0.98)[..., None]
    region = image[pad : pad + side, pad : pad + side].astype(np.float32)
    image[pad : pad + side, pad : pad + side] = (face * face_alpha + region * (1 - face_alpha)).astype(np.uint8)
    alpha[pad : pad + side, pad : pad + side] = np.maximum(
        alpha[pad : pad + side, pad : pad + side], face_alpha[..., 0]
    )
    margin = int(side * 0.03)
    box = (pad + margin, pad + margin, side - 2 * margin, side - 2 * margin)
    return Head(image, alpha, box, "fer", int(labels[pick]))


# --- occluders: drawn on the head patch, over its face box --------------------------------------------------


def textured(rng: np.random.Generator, shape: tuple[int, int], colour, strength: float = 18.0) -> np.ndarray:
    """A flat colour with low-frequency shading and fine grain, so an occluder is not a clean flat blob."""
    h, w = shape
    shade = cv2.resize(rng.normal(0, 1, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 1, (h, w)).astype(np.float32)
    base = np.array(colour, np.float32)[None, None, :] + (shade * strength + grain * strength / 3)[..., None]
    return np.clip(base, 0, 255).astype(np.uint8)


def paint(image: np.ndarray, mask: np.ndarray, texture: np.ndarray) -> None:
    soft = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)[..., None]
    image[:] = (texture * soft + image * (1 - soft)).astype(np.uint8)


def occlude_hand(rng: np.random.Generator, head: Head) -> None:
    """A palm with fingers over the mouth and nose (or over one eye and cheek), in a skin tone."""
    x, y, w, h = head.box
    mask = np.zeros(head.image.shape[:2], np.uint8)
    over_mouth = rng.random() < 0.7
    cx = x + w // 2 + int(rng.uniform(-0.15, 0.15) * w)
    cy = y + int(h * (rng.uniform(0.72, 0.85) if over_mouth else rng.uniform(0.4, 0.55)))
    if not over_mouth:
        cx = x + int(w * (0.25 if rng.random() < 0.5 else 0.75))
    palm = (int(w * rng.uniform(0.28, 0.36)), int(h * rng.uniform(0.2, 0.26)))
    angle = rng.uniform(-35, 35)
    cv2.ellipse(mask, (cx, cy), palm, angle, 0, 360, 1, -1)
    direction = np.deg2rad(angle + (180 if rng.random() < 0.5 else 0))
    for i in range(4):  # fingers fan out sideways across the face
        offset = (i - 1.5) * palm[1] * 0.5
        ox, oy = cx - np.sin(direction) * offset, cy + np.cos(direction) * offset
        length = palm[0] * rng.uniform(1.2, 1.7)
        tip = (int(ox + np.cos(direction) * length), int(oy + np.sin(direction) * length))
        cv2.line(mask, (int(ox), int(oy)), tip, 1, max(3, int(palm[1] * 0.42)))
    tone = SKIN_TONES_BGR[rng.integers(len(SKIN_TONES_BGR))]
    paint(head.image, mask, textured(rng, mask.shape, tone))
    edges = cv2.Canny(mask * 255, 50, 150) > 0  # the creases and outline a real hand shows
    head.image[edges] = (head.image[edges] * 0.7).astype(np.uint8)


def occlude_sleeve(rng: np.random.Generator, head: Head) -> None:
    """A knitted sleeve across the lower face, as when a child wipes tears."""
    x, y, w, h = head.box
    mask = np.zeros(head.image.shape[:2], np.uint8)
    angle = rng.uniform(-30, 30)
    centre = (x + w // 2 + int(rng.uniform(-0.1, 0.1) * w), y + int(h * rng.uniform(0.68, 0.8)))
    size = (int(w * 0.9), int(h * rng.uniform(0.2, 0.28)))
    box = cv2.boxPoints((centre, size, angle)).astype(np.int32)
    cv2.fillPoly(mask, [box], 1)
    colour = tuple(int(c) for c in rng.integers(30, 220, 3))
    texture = textured(rng, mask.shape, colour, 25)
    stripes = (np.arange(mask.shape[1]) // max(2, w // 20)) % 2 == 0  # knit ribs
    texture[:, stripes] = (texture[:, stripes] * 0.8).astype(np.uint8)
    paint(head.image, mask, texture)


def occlude_hair(rng: np.random.Generator, head: Head) -> None:
    """Strands of hair over the forehead and one eye."""
    x, y, w, h = head.box
    mask = np.zeros(head.image.shape[:2], np.uint8)
    side = -1 if rng.random() < 0.5 else 1
    for _ in range(int(rng.integers(14, 24))):
        start = (x + w // 2 + int(rng.uniform(-0.4, 0.4) * w), y - int(0.1 * h))
        end = (start[0] + side * int(rng.uniform(0.05, 0.35) * w), y + int(rng.uniform(0.3, 0.55) * h))
        mid = ((start[0] + end[0]) // 2 + int(rng.uniform(-0.1, 0.1) * w), (start[1] + end[1]) // 2)
        curve = np.array([start, mid, end], np.int32)
        cv2.polylines(mask, [curve], False, 1, max(2, int(w * rng.uniform(0.03, 0.06))))
    colour = HAIR_BGR[rng.integers(len(HAIR_BGR))]
    paint(head.image, mask, textured(rng, mask.shape, colour, 12))


def occlude_toy(rng: np.random.Generator, head: Head) -> None:
    """A plush toy or a bright block held up in front of the lower face."""
    x, y, w, h = head.box
    mask = np.zeros(head.image.shape[:2], np.uint8)
    cx = x + int(w * rng.uniform(0.2, 0.8))
    cy = y + int(h * rng.uniform(0.75, 0.95))
    radius = int(w * rng.uniform(0.25, 0.33))
    colour = tuple(int(c) for c in rng.integers(40, 230, 3))
    if rng.random() < 0.5:  # a plush: round body and two ears
        cv2.circle(mask, (cx, cy), radius, 1, -1)
        for dx in (-1, 1):
            cv2.circle(mask, (cx + dx * int(radius * 0.75), cy - int(radius * 0.8)), radius // 3, 1, -1)
    else:
        cv2.rectangle(mask, (cx - radius, cy - radius), (cx + radius, cy + radius), 1, -1)
    paint(head.image, mask, textured(rng, mask.shape, colour, 22))


OCCLUDERS = {"hand": occlude_hand, "sleeve": occlude_sleeve, "hair": occlude_hair, "toy": occlude_toy}


# --- geometric warps on the head patch ------------------------------------------------------------------------


def roll(head: Head, degrees: float) -> Head:
    """Rotate the head patch; the face box becomes the bounding box of the rotated face box."""
    h, w = head.image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    image = cv2.warpAffine(head.image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(head.alpha, matrix, (w, h))
    x, y, bw, bh = head.box
    corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], np.float32) @ matrix.T
    # a rotated face's extent: shrink the corner box towards the centre (the face is an ellipse, not a square)
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    cx, cy, ew, eh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.85, (y1 - y0) * 0.85
    return Head(image, alpha, (int(cx - ew / 2), int(cy - eh / 2), int(ew), int(eh)), head.source, head.label)


def yaw(head: Head, degrees: float) -> Head:
    """A yaw-like warp: one half of the face is foreshortened, the other stays, the whole narrows."""
    h, w = head.image.shape[:2]
    x, y, bw, bh = head.box
    turn = np.deg2rad(abs(degrees))
    far = 1.0 - 0.6 * np.sin(turn)  # the far side shrinks in height and width
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    shrink = (1 - far) * h / 2
    if degrees > 0:
        dst = np.float32([[0, 0], [w * np.cos(turn), shrink], [w * np.cos(turn), h - shrink], [0, h]])
    else:
        offset = w * (1 - np.cos(turn))
        dst = np.float32([[offset, shrink], [w, 0], [w, h], [offset, h - shrink]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    image = cv2.warpPerspective(head.image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpPerspective(head.alpha, matrix, (w, h))
    box = np.float32([[[x, y]], [[x + bw, y]], [[x, y + bh]], [[x + bw, y + bh]]])
    warped = cv2.perspectiveTransform(box, matrix).reshape(-1, 2)
    (x0, y0), (x1, y1) = warped.min(0), warped.max(0)
    return Head(image, alpha, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), head.source, head.label)


# --- backgrounds ---------------------------------------------------------------------------------------------


@cache
def _posters() -> tuple[np.ndarray, ...]:
    """Photos scikit-image ships with no human face in them, hung on the wall as posters."""
    from skimage import data

    pictures = []
    for name in ("coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "colorwheel"):
        try:
            rgb = getattr(data, name)()
        except Exception:  # a sample that needs a download (pooch) is simply left out
            continue
        rgb = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
        pictures.append(cv2.cvtColor(rgb[..., :3], cv2.COLOR_RGB2BGR))
    return tuple(pictures)


def room(rng: np.random.Generator) -> np.ndarray:
    """A playroom: a wall with shading, a floor, a window or door, shelves of books, maybe a poster."""
    wall = tuple(int(c) for c in rng.integers(120, 235, 3))
    frame = textured(rng, (HEIGHT, WIDTH), wall, 14)
    floor_y = int(rng.integers(300, 420))
    frame[floor_y:] = textured(rng, (HEIGHT - floor_y, WIDTH), tuple(int(c) for c in rng.integers(40, 160, 3)), 20)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = int(rng.integers(0, WIDTH - 120)), int(rng.integers(20, floor_y - 100))
        w, h = int(rng.integers(60, 200)), int(rng.integers(60, 160))
        kind = rng.random()
        if kind < 0.35:  # window with mullions
            cv2.rectangle(frame, (x0, y0), (x0 + w, y0 + h), (235, 225, 200), -1)
            cv2.rectangle(frame, (x0, y0), (x0 + w, y0 + h), (90, 90, 90), 4)
            cv2.line(frame, (x0 + w // 2, y0), (x0 + w // 2, y0 + h), (90, 90, 90), 3)
        elif kind < 0.7:  # shelf of books
            cv2.rectangle(frame, (x0, y0 + h), (x0 + w, y0 + h + 8), (60, 90, 120), -1)
            bx = x0
            while bx < x0 + w - 8:
                bw = int(rng.integers(6, 16))
                colour = tuple(int(c) for c in rng.integers(20, 230, 3))
                cv2.rectangle(frame, (bx, y0 + h - int(rng.integers(30, 60))), (bx + bw, y0 + h), colour, -1)
                bx += bw + 1
        elif _posters():
            poster = _posters()[rng.integers(len(_posters()))]
            fitted = cv2.resize(poster, (w, h), interpolation=cv2.INTER_AREA)
            frame[y0 : y0 + h, x0 : x0 + w] = fitted[: HEIGHT - y0, : WIDTH - x0]
    return frame


def body(frame: np.ndarray, rng: np.random.Generator, cx: int, top: int, width: int) -> None:
    """Shoulders in a shirt below a head, so a face sits on a person rather than floating on the wall."""
    colour = tuple(int(c) for c in rng.integers(20, 235, 3))
    cv2.ellipse(frame, (cx, top + width), (width, width), 0, 180, 360, colour, -1)


def paste(frame: np.ndarray, head: Head, x: int, y: int) -> tuple[int, int, int, int] | None:
    """Blend a head patch at (x, y); the face box, clipped to the frame, or None when too little is left."""
    h, w = head.image.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x), max(0, y), min(WIDTH, x + w), min(HEIGHT, y + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    patch = head.image[fy0 - y : fy1 - y, fx0 - x : fx1 - x].astype(np.float32)
    alpha = head.alpha[fy0 - y : fy1 - y, fx0 - x : fx1 - x, None]
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (patch * alpha + region * (1 - alpha)).astype(np.uint8)
    bx, by, bw, bh = head.box
    gx0, gy0 = max(0, x + bx), max(0, y + by)
    gx1, gy1 = min(WIDTH, x + bx + bw), min(HEIGHT, y + by + bh)
    if (gx1 - gx0) * (gy1 - gy0) < 0.4 * bw * bh:  # less than 40% of the face in view: not a findable face
        return None
    return gx0, gy0, gx1 - gx0, gy1 - gy0


# --- scenes --------------------------------------------------------------------------------------------------


def seeded(condition: str, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(condition.encode()), index])


def face_scene(condition: str, index: int, seed: int = 0, fer_split: str = "training") -> Scene:
    """One frame of ``condition`` (one of ``FACE_CONDITIONS``) with its ground-truth face boxes.

    ``fer_split`` only picks which FER2013 faces are drawn: the scene is otherwise the same for a seed.
    """
    rng = seeded(condition, index, seed)
    frame = room(rng)
    scene = Scene(frame, condition)
    count = int(rng.integers(2, 5)) if condition == "several" else 1
    slots = np.linspace(0, WIDTH, count + 1)
    for slot in range(count):
        face_px = face_size(condition, rng, count)
        head = make_head(rng, face_px, fer_split)
        head = transform(condition, rng, head)
        bx, by, bw, bh = head.box
        x, y = place(condition, rng, head.box, slots[slot], slots[slot + 1])
        body(frame, rng, x + bx + bw // 2, y + by + int(bh * 1.05), int(bw * 0.9))
        box = paste(frame, head, x, y)
        if box is not None:
            scene.faces.append(box)
            scene.sources.append(head.source)
            scene.labels.append(head.label)
    scene.frame = camera_effects(condition, rng, frame)
    return scene


def face_size(condition: str, rng: np.random.Generator, count: int) -> int:
    if condition == "small":
        return int(rng.integers(48, 80))
    if condition in ("close_up", "hand_tilted_close"):
        return int(rng.integers(300, 440))
    if condition == "several":
        return int(rng.integers(70, min(170, WIDTH // (count + 1))))
    return int(rng.integers(90, 220))


def transform(condition: str, rng: np.random.Generator, head: Head) -> Head:
    if condition in OCCLUDERS:
        OCCLUDERS[condition](rng, head)
    elif condition == "hand_tilted_close":  # the crying child: hand over the mouth, head tilted, close
        occlude_hand(rng, head)
        head = roll(head, rng.uniform(10, 25) * rng.choice([-1, 1]))
    if condition == "roll":
        head = roll(head, rng.uniform(15, 30) * rng.choice([-1, 1]))
    elif condition == "yaw":
        head = yaw(head, rng.uniform(25, 45) * rng.choice([-1, 1]))
    return head


def place(
    condition: str, rng: np.random.Generator, box: tuple[int, int, int, int], left: float, right: float
) -> tuple[int, int]:
    """Top-left corner of the head patch: inside the frame, or cut by an edge for edge_cut and close-ups."""
    bx, by, bw, bh = box
    if condition in ("edge_cut", "close_up", "hand_tilted_close"):
        cut = rng.uniform(0.25, 0.45) if condition == "edge_cut" else rng.uniform(0.0, 0.3)
        edge = rng.integers(4)
        cx = rng.uniform(bw / 2, WIDTH - bw / 2) if bw < WIDTH else WIDTH / 2
        cy = rng.uniform(bh / 2, HEIGHT - bh / 2) if bh < HEIGHT else HEIGHT / 2
        if edge == 0:
            cx = bw / 2 - cut * bw
        elif edge == 1:
            cx = WIDTH - bw / 2 + cut * bw
        elif edge == 2:
            cy = bh / 2 - cut * bh
        else:
            cy = HEIGHT - bh / 2 + cut * bh
        return int(cx - bx - bw / 2), int(cy - by - bh / 2)
    lo = left + 5 - bx
    hi = max(lo + 1, right - 5 - bx - bw)
    x = int(rng.uniform(lo, hi))
    y = int(rng.uniform(10 - by, max(11 - by, HEIGHT - 10 - by - bh * 1.6)))
    return x, y


def camera_effects(condition: str, rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
    """Blur, low light, and for every frame the sensor noise and JPEG coding of a cheap webcam."""
    if condition == "blur":
        if rng.random() < 0.5:
            sigma = rng.uniform(2.0, 3.5)
            frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        else:  # motion blur: a child moving
            length = int(rng.integers(9, 17))
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2] = 1.0 / length
            rotation = cv2.getRotationMatrix2D((length / 2, length / 2), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rotation, (length, length))
            frame = cv2.filter2D(frame, -1, kernel / max(kernel.sum(), 1e-6))
    noise = 3.0
    if condition == "low_light":
        gain = rng.uniform(0.15, 0.35)
        frame = (255.0 * (frame / 255.0) ** 1.3 * gain).astype(np.float32)
        noise = rng.uniform(3.0, 6.0)
    noisy = np.clip(frame.astype(np.float32) + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else noisy


def draw_teddy(frame: np.ndarray, rng: np.random.Generator, cx: int, cy: int, r: int) -> None:
    """A teddy bear: round head, ears, two button eyes and a snout, the most face-like toy in a playroom."""
    fur = tuple(int(c) for c in rng.integers(40, 200, 3))
    cv2.circle(frame, (cx, cy + int(r * 1.6)), int(r * 1.2), fur, -1)
    for dx in (-1, 1):
        cv2.circle(frame, (cx + dx * int(r * 0.8), cy - int(r * 0.8)), r // 3, fur, -1)
    cv2.circle(frame, (cx, cy), r, fur, -1)
    for dx in (-1, 1):
        cv2.circle(frame, (cx + dx * r // 3, cy - r // 5), max(2, r // 9), (15, 15, 15), -1)
    cv2.ellipse(frame, (cx, cy + r // 3), (r // 3, r // 4), 0, 0, 360, (200, 210, 220), -1)
    cv2.circle(frame, (cx, cy + r // 4), max(2, r // 10), (20, 20, 20), -1)


def draw_face_drawing(frame: np.ndarray, rng: np.random.Generator, x0: int, y0: int, size: int) -> None:
    """A child's crayon drawing of a face on a sheet of paper pinned to the wall."""
    cv2.rectangle(frame, (x0, y0), (x0 + size, y0 + int(size * 1.3)), (245, 248, 250), -1)
    crayon = tuple(int(c) for c in rng.integers(0, 200, 3))
    cx, cy, r = x0 + size // 2, y0 + int(size * 0.6), int(size * rng.uniform(0.3, 0.42))
    thickness = max(2, size // 40)
    cv2.circle(frame, (cx, cy), r, crayon, thickness)
    for dx in (-1, 1):
        cv2.circle(frame, (cx + dx * r // 3, cy - r // 4), max(2, r // 8), crayon, -1)
    smile = rng.choice([1, -1])  # happy or sad drawing
    cv2.ellipse(
        frame,
        (cx, cy + r // 3 + (r // 4 if smile < 0 else 0)),
        (r // 2, r // 4),
        0,
        0 if smile > 0 else 180,
        180 if smile > 0 else 360,
        crayon,
        thickness,
    )
    if rng.random() < 0.6:  # hair scribble
        for i in range(8):
            a = np.deg2rad(200 + i * 18)
            p0 = (int(cx + r * np.cos(a)), int(cy + r * np.sin(a)))
            cv2.line(frame, p0, (int(cx + 1.3 * r * np.cos(a)), int(cy + 1.3 * r * np.sin(a))), crayon, thickness)


def free_scene(condition: str, index: int, seed: int = 0) -> Scene:
    """A face-free frame: an empty room, toys on the floor, or drawings of faces on the wall."""
    rng = seeded(condition, index, seed)
    frame = room(rng)
    if condition == "free_toys":
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(25, 90))
            draw_teddy(frame, rng, int(rng.integers(r, WIDTH - r)), int(rng.integers(r, HEIGHT - 2 * r)), r)
        for _ in range(int(rng.integers(0, 4))):  # balls and blocks
            colour = tuple(int(c) for c in rng.integers(20, 240, 3))
            cx, cy, r = int(rng.integers(0, WIDTH)), int(rng.integers(HEIGHT // 2, HEIGHT)), int(rng.integers(15, 50))
            if rng.random() < 0.5:
                cv2.circle(frame, (cx, cy), r, colour, -1)
            else:
                cv2.rectangle(frame, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
    elif condition == "free_drawings":
        for _ in range(int(rng.integers(1, 4))):
            size = int(rng.integers(70, 180))
            draw_face_drawing(
                frame, rng, int(rng.integers(0, WIDTH - size)), int(rng.integers(0, HEIGHT - int(size * 1.3))), size
            )
    return Scene(camera_effects(condition, rng, frame), condition)


def scenes(per_condition: int, seed: int = 0, conditions: tuple[str, ...] | None = None):
    """Every benchmark scene, condition by condition (a generator: one frame in memory at a time)."""
    for condition in conditions or FACE_CONDITIONS + FREE_CONDITIONS:
        make = free_scene if condition.startswith("free_") else face_scene
        for index in range(per_condition):
            yield make(condition, index, seed)
