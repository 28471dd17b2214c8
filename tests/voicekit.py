"""The real voice for tests: the installed model (kiosk models pull joe-voice), or a skip that says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kiosk.config import PROJECT_ROOT, VoiceConfig

VOICE_DIR = PROJECT_ROOT / "models" / "voice" / "en_US-joe-medium"


def voice_dir() -> Path:
    """The installed voice; skips only when it truly cannot be had (make setup installs both parts)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("the espeak-ng program is not installed (make setup installs it with apt-get)")
    if not (VOICE_DIR / "manifest.json").is_file():
        try:
            from kiosk.voice.pull import pull_voice

            pull_voice(PROJECT_ROOT / "models")
        except SystemExit as exc:
            pytest.skip(str(exc))
    return VOICE_DIR


def voice_config(**changes) -> VoiceConfig:
    return VoiceConfig(model_path=voice_dir(), **changes)
