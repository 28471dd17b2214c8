"""Model manifests: what a shipped model is, where it came from, and the hashes that prove its files.

Every model directory holds ``manifest.json`` beside its files (and a ``MODEL_CARD.md`` for people).
Loading a model verifies each file's sha256 first, so a corrupted or tampered file is refused with a clear
error instead of producing wrong emotions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RESERVED = ("manifest.json", "manifest.sig")
PATH_PART = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"  # a name or version: also a directory name on the kiosk


def plain_relative(path: str) -> bool:
    """A relative POSIX path in its one canonical spelling: no leading ``/``, no ``.``, ``..`` or ``\\``."""
    canonical = bool(path) and not path.startswith("/") and "\\" not in path and posixpath.normpath(path) == path
    return canonical and ".." not in path.split("/")


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(max_length=300, description="relative to the model directory")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: str = Field("weights", max_length=32, description="weights, engine, tokenizer, ...")

    @field_validator("path")
    @classmethod
    def _inside_the_model(cls, path: str) -> str:
        """A plain relative path inside the model directory: never absolute, ``..``, or the manifest itself."""
        if not plain_relative(path) or path in RESERVED:
            raise ValueError(f"{path[:100]!r} is not a plain relative path to one of the model's own files")
        return path


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PATH_PART)
    version: str = Field(pattern=PATH_PART)
    task: str = Field(description="emotion, story, illustrate, ...")
    backend: str = Field(description="onnx, gguf, diffusers, ...")
    files: list[ModelFile] = Field(min_length=1, max_length=5_000)
    source: str = Field(description="how it was made or where it came from")
    licence: str
    metrics: dict[str, float | int | str] = Field(default_factory=dict)
    inputs: dict[str, str | int | float | list[int]] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    calibration_temperature: float = Field(1.0, gt=0)


class ModelError(RuntimeError):
    """A model is missing, incomplete or does not match its manifest."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(model_dir: Path, verify: bool = True) -> Manifest:
    """Read and (by default) verify a model directory; raise ``ModelError`` with the reason."""
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise ModelError(f"no model at {model_dir}: {MANIFEST} is missing")
    try:
        manifest = Manifest.model_validate_json(path.read_text())
    except ValueError as exc:
        raise ModelError(f"{path} is not a valid manifest: {exc}") from None
    if verify:
        for item in manifest.files:
            file_path = Path(model_dir) / item.path
            if not file_path.is_file():
                raise ModelError(f"{manifest.name}: file {item.path} is missing")
            actual = sha256_of(file_path)
            if actual != item.sha256:
                raise ModelError(
                    f"{manifest.name}: {item.path} has sha256 {actual[:12]}…, manifest says {item.sha256[:12]}…"
                )
    return manifest


def write_manifest(model_dir: Path, manifest: Manifest) -> None:
    (Path(model_dir) / MANIFEST).write_text(json.dumps(manifest.model_dump(), indent=2) + "\n")


def file_entry(model_dir: Path, relative: str, role: str = "weights") -> ModelFile:
    return ModelFile(path=relative, sha256=sha256_of(Path(model_dir) / relative), role=role)
