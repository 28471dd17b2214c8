"""``kiosk models install BUNDLE``: verify, install beside the current model, switch, check, roll back.

1. unpack into a staging directory (tarfile's ``data`` filter) and verify the signature against the
   trusted keys, then every file's sha256 — a bad bundle is refused and nothing changes; a version older
   than the one serving (same model name, PEP 440 order) is refused unless ``--force``: an old signed bundle
   stays validly signed for ever, so replaying it must not bring back a model that was replaced for a reason;
2. move it to ``<task>/<name>/<version>/`` beside the current version and switch ``current`` atomically;
3. run the task's health check in a separate process on ``current``;
4. on failure switch back to the previous model and delete the new one;
5. report the result (retained ``models/deploy``) and, on success, ask the services to reload
   (``cmd/reload-models/set``).

One installation at a time (a lock file); whatever happens the kiosk keeps a working model.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.version import InvalidVersion, Version

from kiosk.bus import Bus
from kiosk.config import Settings
from kiosk.events import Command, DeployResult, Topics
from kiosk.modelstore.bundle import trusted_keys, unpack, verify_unpacked
from kiosk.modelstore.manifest import Manifest, ModelError, load_manifest
from kiosk.modelstore.registry import TASKS, ModelStore, active_model_dir
from kiosk.service import broker_address

logger = logging.getLogger(__name__)


@contextmanager
def install_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".install.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelError("another model installation is running on this kiosk") from None
        yield


def run_health_check(settings: Settings, task: str, model_dir: Path) -> tuple[bool, str]:
    """``kiosk models check`` in its own process, with a timeout; (passed, what it said)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(settings.model_dump_json())
    try:
        result = subprocess.run(
            [sys.executable, "-m", "kiosk", "models", "check", "--task", task, str(model_dir)],
            env=os.environ | {"KIOSK_CONFIG": handle.name},
            capture_output=True,
            text=True,
            timeout=settings.models.health_check_timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False, f"health check took longer than {settings.models.health_check_timeout_s:.0f} s"
    finally:
        os.unlink(handle.name)
    said = result.stdout if result.returncode == 0 else result.stderr  # the check's verdict, not the logs
    lines = [line for line in said.splitlines() if line.strip()]
    return result.returncode == 0, lines[-1] if lines else f"exit status {result.returncode}"


def refuse_downgrade(settings: Settings, manifest: Manifest) -> None:
    """Raise if ``manifest`` is an older version of the model now serving its task.

    Only versions of the same model name are ordered, and only when both are PEP 440 versions (``1.2.0``);
    a model of another name, or a version like ``q4_1``, is a different model, not an older one.
    """
    try:
        serving = load_manifest(active_model_dir(settings, manifest.task), verify=False)
    except (ModelError, OSError):
        return  # nothing serves this task yet
    if serving.name != manifest.name:
        return
    try:
        older = Version(manifest.version) < Version(serving.version)
    except InvalidVersion:
        logger.info("versions %s and %s are not ordered (not PEP 440)", manifest.version, serving.version)
        return
    if older:
        raise ModelError(
            f"{manifest.name} {manifest.version} is older than the serving {serving.version}; "
            "install it with --force to go back on purpose"
        )


def install_bundle(settings: Settings, bundle_path: Path, force: bool = False) -> DeployResult:
    """Install one bundle; never raises for a bad bundle — the result says what happened.

    ``force`` allows a version older than the serving one (a deliberate rollback by the maintainer).
    """
    started = time.perf_counter()
    store = ModelStore(settings.installed_models_dir)

    def result(**fields) -> DeployResult:
        return DeployResult(seconds=round(time.perf_counter() - started, 3), **fields)

    try:
        with install_lock(store.root):
            staging = store.root / ".staging" / uuid.uuid4().hex
            staging.mkdir(parents=True)
            try:
                unpack(bundle_path, staging)
                manifest = verify_unpacked(staging, trusted_keys(settings.models.trusted_keys_dir))
                if manifest.task not in TASKS:
                    raise ModelError(f"bundle task {manifest.task!r} is not one of {', '.join(TASKS)}")
                if not force:
                    refuse_downgrade(settings, manifest)
                target = store.version_dir(manifest.task, manifest.name, manifest.version)
                if store.current(manifest.task) == target.resolve():
                    raise ModelError(f"{manifest.name} {manifest.version} is already the current model")
                if target.exists():
                    shutil.rmtree(target)  # an older copy of this version that is not in use
                target.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            identity = {"task": manifest.task, "name": manifest.name, "version": manifest.version}
            old = store.switch(manifest.task, target)
            previous = f"{old.parent.name} {old.name}" if old else None
            passed, detail = run_health_check(settings, manifest.task, store.root / manifest.task / "current")
            if not passed:
                store.restore(manifest.task, old)
                shutil.rmtree(target, ignore_errors=True)
                return result(ok=False, action="rolled back", previous=previous, reason=detail, **identity)
            return result(ok=True, action="installed", previous=previous, reason=detail, **identity)
    except ModelError as exc:
        return result(ok=False, action="refused", reason=str(exc))


def report(settings: Settings, outcome: DeployResult, timeout: float = 5.0) -> bool:
    """Publish the result (retained) and, after an install, the reload command. False if the broker is away."""
    topics = Topics(settings.kiosk_id)
    bus = Bus(broker_address(settings, "deploy"), client_id=f"kiosk-{settings.kiosk_id}-deploy", persistent=False)
    bus.start()
    try:
        if not bus.wait_connected(timeout):
            logger.warning("broker unreachable: the result was not reported on MQTT")
            return False
        infos = [bus.publish(topics.deploy, outcome.model_dump_json().encode(), qos=1, retain=True)]
        if outcome.ok:
            infos.append(
                bus.publish(topics.command("reload-models"), Command(value="PRESS").model_dump_json().encode())
            )
        for info in infos:
            if info is not None:
                info.wait_for_publish(timeout)
        return True
    finally:
        bus.stop()


def main_install(settings: Settings, bundle_path: Path, publish: bool = True, force: bool = False) -> int:
    outcome = install_bundle(settings, bundle_path, force=force)
    print(json.dumps(outcome.model_dump()))
    if publish:
        report(settings, outcome)
    return 0 if outcome.ok else 1
