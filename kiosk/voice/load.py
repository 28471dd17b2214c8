"""Find and load the kiosk's voice: the installed model (verified against its manifest) or any Piper voice
by path. A missing or broken voice is a clear reason, never a crash: the service keeps running and says why."""

from __future__ import annotations

import logging
from pathlib import Path

from kiosk.config import VoiceConfig
from kiosk.modelstore.manifest import MANIFEST, ModelError, load_manifest
from kiosk.voice.narrator import Narrator
from kiosk.voice.phonemes import Espeak
from kiosk.voice.piper import PiperVoice, VoiceError

logger = logging.getLogger(__name__)


def voice_files(path: Path) -> tuple[Path, Path, str]:
    """(model, config, label) of the voice at ``path``; ``VoiceError`` with the reason when there is none."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        try:
            manifest = load_manifest(path)
        except ModelError as exc:
            raise VoiceError(str(exc)) from None
        roles = {f.role: path / f.path for f in manifest.files}
        if "weights" not in roles or "config" not in roles:
            raise VoiceError(f"{path}: the manifest lists no weights and config")
        return roles["weights"], roles["config"], f"{manifest.name} {manifest.version}"
    if path.is_dir():
        models = sorted(path.glob("*.onnx"))
        if len(models) != 1:
            raise VoiceError(f"no voice at {path} (run: kiosk models pull joe-voice)")
        path = models[0]
    if path.suffix != ".onnx" or not path.is_file():
        raise VoiceError(f"no voice at {path} (run: kiosk models pull joe-voice)")
    config = path.with_name(path.name + ".json")
    if not config.is_file():
        raise VoiceError(f"{path.name} has no {config.name} beside it")
    return path, config, path.stem


def load_narrator(cfg: VoiceConfig) -> tuple[Narrator, str]:
    """The narrator and the voice's label; raises ``VoiceError`` or ``PhonemizerError`` with the reason."""
    if not cfg.enabled:
        raise VoiceError("the voice is turned off (voice.enabled)")
    model, config, label = voice_files(cfg.model_path)
    voice = PiperVoice(model, config, cfg.threads)
    narrator = Narrator(voice, Espeak(voice.espeak_voice, cfg.espeak_program), cfg.rate)
    logger.info("voice %s (%s word timings)", label, "synthesiser" if voice.durations_output else "estimated")
    return narrator, label
