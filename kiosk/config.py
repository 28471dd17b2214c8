"""Kiosk configuration: one pydantic model, documented field by field.

Values come from a TOML file (``--config`` or ``KIOSK_CONFIG``), then from ``KIOSK_<SECTION>__<FIELD>``
environment variables. Broker passwords never live in the file: they are read from systemd credentials
(``$CREDENTIALS_DIRECTORY/broker-<user>``) or from ``<secrets_dir>/broker-<user>``.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(Section):
    host: str = Field("127.0.0.1", title="Broker host", description="MQTT broker the services use")
    port: int = Field(1883, title="Broker port", ge=1, le=65535)
    secrets_dir: Path = Field(
        PROJECT_ROOT / ".run" / "secrets",
        title="Secrets directory",
        description="where broker-<user> password files live outside systemd",
    )


class CameraConfig(Section):
    source: str | None = Field(
        None,
        title="Source",
        description=(
            "camera index, video file, image, folder or stream URL; none: first camera, else the sample photo"
        ),
    )
    fps: float = Field(15.0, gt=0, title="Frames per second for image and folder sources")
    detector: str = Field("dlib-hog", title="Face detector", description="dlib-hog (default) or haar (OpenCV)")
    detect_every: int = Field(1, ge=1, title="Run face detection on every Nth frame")
    attributes: bool = Field(True, title="Estimate age group, clothing colour and glasses for the story")
    steady_frames: int = Field(5, ge=1, title="Frames a face must stay before a story starts")
    leave_after_s: float = Field(3.0, gt=0, title="Seconds without a face before the child has left")
    cooldown_s: float = Field(10.0, ge=0, title="Seconds after a visit before a new one can start")
    min_face_px: int = Field(48, ge=16, title="Smallest face side in pixels")


class EmotionConfig(Section):
    model_dir: Path = Field(
        PROJECT_ROOT / "models" / "emotion" / "kiosk-compact-cnn",
        title="Emotion model directory",
        description="holds manifest.json + ONNX",
    )
    runtimes: list[str] = Field(["tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"], title="Runtimes to try, in order")
    unsure_below: float = Field(
        0.40,
        ge=0,
        le=1,
        title="Confidence below which the story is neutral",
        description="a face the model is unsure of gets a gentle neutral story",
    )
    threads: int = Field(1, ge=1, title="CPU threads for inference")


class StoryConfig(Section):
    scenes: int = Field(3, ge=1, le=6, title="Scenes per story")
    seed: int | None = Field(None, title="Fixed random seed (for tests); none varies every story")
    backend: Literal["llama-cpp", "transformers", "template"] = Field(
        "llama-cpp", title="Storyteller backend", description="template: no LLM, the template stories alone"
    )
    model_path: Path = Field(
        PROJECT_ROOT / "models" / "story" / "smollm2-135m-instruct",
        title="LLM model",
        description="a directory with manifest.json + GGUF (kiosk models pull) or a transformers model directory",
    )
    threads: int = Field(2, ge=1, title="CPU threads for the LLM")
    max_attempts: int = Field(3, ge=1, le=10, title="Generations tried before the template scene stands in")
    max_tokens: int = Field(60, ge=8, le=400, title="Tokens the LLM may write for the comfort scene")
    temperature: float = Field(0.8, ge=0, le=2, title="Sampling temperature")
    safety_embeddings: bool = Field(True, title="Check each sentence with the MiniLM safety prototypes")


class IllustrateConfig(Section):
    width: int = Field(768, ge=128, title="Picture width in pixels")
    height: int = Field(576, ge=128, title="Picture height in pixels")


class WebConfig(Section):
    host: str = Field("127.0.0.1", title="Address the kiosk page listens on")
    port: int = Field(8080, ge=1, le=65535, title="Port of the kiosk page")
    grace_s: float = Field(20.0, ge=0, title="Seconds the story stays after the child leaves")


class Settings(Section):
    kiosk_id: str = Field(
        "kiosk1",
        title="Kiosk id",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="names this kiosk in every topic: kiosk/<kiosk_id>/...",
    )
    run_dir: Path = Field(PROJECT_ROOT / ".run", title="Runtime directory (broker data, logs)")
    broker: BrokerConfig = BrokerConfig()
    camera: CameraConfig = CameraConfig()
    emotion: EmotionConfig = EmotionConfig()
    story: StoryConfig = StoryConfig()
    illustrate: IllustrateConfig = IllustrateConfig()
    web: WebConfig = WebConfig()

    def broker_password(self, user: str) -> str | None:
        """The broker password for ``user`` from systemd credentials or the secrets directory."""
        candidates = []
        if credentials := os.environ.get("CREDENTIALS_DIRECTORY"):
            candidates.append(Path(credentials) / f"broker-{user}")
        candidates.append(self.broker.secrets_dir / f"broker-{user}")
        for path in candidates:
            if path.is_file():
                return path.read_text().strip()
        return None


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("KIOSK_") or key == "KIOSK_CONFIG":
            continue
        path = key[len("KIOSK_") :].lower().split("__")
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overrides


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from a TOML file (optional) with environment overrides on top."""
    environ = dict(os.environ if environ is None else environ)
    path = path or (Path(environ["KIOSK_CONFIG"]) if environ.get("KIOSK_CONFIG") else None)
    data: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        data = json.loads(text) if Path(path).suffix == ".json" else tomllib.loads(text)
    return Settings.model_validate(_merge(data, _env_overrides(environ)))
