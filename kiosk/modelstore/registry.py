"""Which model each task uses: the installed (deployed) version when there is one, else the shipped default.

Installed models live under ``<installed_dir>/<task>/<name>/<version>/``; ``<task>/current`` is a symlink to
the active one and ``<task>/previous`` to the one before it. Switching replaces the symlink with
``os.replace``, so a reader sees the old model or the new one, never a half-made directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kiosk.config import Settings

logger = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("emotion", "story", "illustrate")


def shipped_model_dir(settings: Settings, task: str) -> Path:
    """The model the configuration names (the project's default unless the operator changed it)."""
    if task == "emotion":
        return settings.emotion.model_dir
    if task == "story":
        return settings.story.model_path
    if task == "illustrate":
        return settings.illustrate.model_dir
    raise ValueError(f"unknown model task {task!r}; expected one of {', '.join(TASKS)}")


class ModelStore:
    """The installed models of one kiosk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def version_dir(self, task: str, name: str, version: str) -> Path:
        for part in (task, name, version):
            if not part or part in (".", "..") or "/" in part:
                raise ValueError(f"bad model path part {part!r}")
        return self.root / task / name / version

    def _link(self, task: str, which: str) -> Path:
        return self.root / task / which

    def current(self, task: str) -> Path | None:
        link = self._link(task, "current")
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    def previous(self, task: str) -> Path | None:
        link = self._link(task, "previous")
        return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None

    def _point(self, task: str, which: str, target: Path | None) -> None:
        link = self._link(task, which)
        if target is None:
            link.unlink(missing_ok=True)
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        temporary = link.with_name(f".{which}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(os.path.relpath(target, link.parent))
        os.replace(temporary, link)  # atomic on POSIX

    def switch(self, task: str, target: Path) -> Path | None:
        """Make ``target`` current; the old current becomes previous. Returns the old current."""
        old = self.current(task)
        if old is not None and old != target.resolve():
            self._point(task, "previous", old)
        self._point(task, "current", target)
        logger.info("%s model switched to %s (was %s)", task, target, old)
        return old

    def restore(self, task: str, old: Path | None) -> None:
        """Point ``current`` back at ``old`` (None: no installed model, the shipped default serves)."""
        self._point(task, "current", old)
        logger.warning("%s model rolled back to %s", task, old or "the shipped default")


def active_model_dir(settings: Settings, task: str) -> Path:
    """The installed current model of ``task`` if one was deployed, else the configured default."""
    installed = ModelStore(settings.installed_models_dir).current(task)
    return installed if installed is not None else shipped_model_dir(settings, task)


def model_label(model_dir: Path) -> str | None:
    """``name@version`` from a model directory's manifest (unverified: for status reports only)."""
    from kiosk.modelstore.manifest import ModelError, load_manifest

    try:
        manifest = load_manifest(model_dir, verify=False)
    except ModelError:
        return None
    return f"{manifest.name}@{manifest.version}"
