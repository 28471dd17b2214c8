"""``kiosk models deploy`` (``make deploy``): build and verify a signed bundle, push it to kiosks, install.

For each kiosk: ``rsync`` the bundle over SSH into its incoming directory, then run ``kiosk models install``
there over SSH; the kiosk verifies, switches, health-checks and rolls back by itself and prints its result
as one JSON line, which is collected here. A target that is a local directory (``/path`` or ``./path``)
stands for a kiosk installed in that directory on this machine (settings in ``<dir>/kiosk.toml`` or ``.json``).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import ValidationError

from kiosk.events import DeployResult
from kiosk.modelstore.bundle import build_bundle, key_id, load_private_key, trusted_keys, unpack, verify_unpacked

logger = logging.getLogger(__name__)

# What `make install` puts on a kiosk: the incoming directory (tmpfiles.d) and `kiosk-admin`, which runs the
# install as the services run (the kiosk user, KIOSK_CONFIG, the installed models directory, the broker's
# deploy credential), so the new model lands where the systemd services load it.
DEFAULT_REMOTE_DIR = "/var/lib/emotionai-kiosk/incoming"
DEFAULT_REMOTE_KIOSK = "/opt/emotionai-kiosk/bin/kiosk-admin"


class DeployError(RuntimeError):
    """A bundle could not be built, copied or installed."""


def is_local(target: str) -> bool:
    return target.startswith(("/", "./", "../"))


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    logger.info("$ %s", shlex.join(command))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _result_line(output: str) -> DeployResult | None:
    for line in reversed(output.splitlines()):
        try:
            return DeployResult.model_validate_json(line)
        except ValidationError:
            continue
    return None


def _install_local(
    rsync: str, bundle: Path, kiosk_dir: Path, timeout: float, force: bool = False
) -> subprocess.CompletedProcess:
    """A kiosk installed in a directory on this machine (settings in its kiosk.toml or kiosk.json)."""
    incoming = kiosk_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    copy = _run([rsync, "-a", "--partial", str(bundle), f"{incoming}/"], timeout)
    if copy.returncode != 0:
        raise DeployError(f"{kiosk_dir}: rsync failed: {copy.stderr.strip()[-300:]}")
    configs = [kiosk_dir / name for name in ("kiosk.toml", "kiosk.json") if (kiosk_dir / name).is_file()]
    env = os.environ | ({"KIOSK_CONFIG": str(configs[0])} if configs else {})
    install = [sys.executable, "-m", "kiosk", "models", "install", str(incoming / bundle.name)]
    install += ["--force"] if force else []
    return subprocess.run(install, capture_output=True, text=True, timeout=timeout, env=env)


def _install_over_ssh(
    rsync: str, bundle: Path, host: str, ssh: str, remote_dir: str, remote_kiosk: str, timeout: float, force: bool
) -> subprocess.CompletedProcess:
    remote_dir = remote_dir.rstrip("/")
    mkdir = _run([*shlex.split(ssh), host, f"mkdir -p {shlex.quote(remote_dir)}"], timeout)
    if mkdir.returncode != 0:
        raise DeployError(f"{host}: ssh failed: {mkdir.stderr.strip()[-300:]}")
    copy = _run([rsync, "-a", "--partial", "-e", ssh, str(bundle), f"{host}:{remote_dir}/"], timeout)
    if copy.returncode != 0:
        raise DeployError(f"{host}: rsync failed: {copy.stderr.strip()[-300:]}")
    remote_bundle = shlex.quote(f"{remote_dir}/{bundle.name}")
    force_flag = " --force" if force else ""
    return _run([*shlex.split(ssh), host, f"{remote_kiosk} models install{force_flag} {remote_bundle}"], timeout)


def push(
    bundle: Path,
    target: str,
    ssh: str = "ssh",
    remote_dir: str = DEFAULT_REMOTE_DIR,
    remote_kiosk: str = DEFAULT_REMOTE_KIOSK,
    timeout: float = 900,
    force: bool = False,
) -> DeployResult:
    """Copy ``bundle`` to one kiosk and install it there; the kiosk's own result (``force``: allow older)."""
    rsync = shutil.which("rsync")
    if rsync is None:
        raise DeployError("rsync not found: install the rsync package (make setup does)")
    if is_local(target):
        install = _install_local(rsync, bundle, Path(target), timeout, force)
    else:
        install = _install_over_ssh(rsync, bundle, target, ssh, remote_dir, remote_kiosk, timeout, force)
    outcome = _result_line(install.stdout)
    if outcome is None:
        raise DeployError(
            f"{target}: install gave no result (exit {install.returncode}): {install.stderr.strip()[-300:]}"
        )
    return outcome


def deploy(
    model_dir: Path,
    key: Path,
    targets: list[str],
    keys_dir: Path | None = None,
    passphrase: bytes | None = None,
    **push_options,
) -> dict:
    """Build the bundle once, check it as a kiosk would, push it everywhere; a report per target."""
    private_key = load_private_key(key, passphrase)
    report: dict = {"model": str(model_dir), "targets": {}}
    with tempfile.TemporaryDirectory(prefix="kiosk-bundle-") as tmp:
        started = time.perf_counter()
        built = build_bundle(Path(model_dir), private_key, Path(tmp) / "bundle.tar")
        # the same checks the kiosk makes, against the public key the kiosks trust, before anything leaves
        check_dir = Path(tmp) / "check"
        unpack(built.path, check_dir)
        public_key = private_key.public_key()
        keys = trusted_keys(keys_dir) if keys_dir else {key_id(public_key): public_key}
        verify_unpacked(check_dir, keys)
        name = f"{built.manifest.task}-{built.manifest.name}-{built.manifest.version}.tar"
        bundle = built.path.rename(Path(tmp) / name)
        report |= {
            "bundle": name,
            "bundle_mb": round(bundle.stat().st_size / 1e6, 2),
            "build_s": round(time.perf_counter() - started, 3),
        }
        for target in targets:
            started = time.perf_counter()
            try:
                outcome = push(bundle, target, **push_options)
                report["targets"][target] = outcome.model_dump() | {"deploy_s": round(time.perf_counter() - started, 3)}
            except (DeployError, subprocess.TimeoutExpired) as exc:
                report["targets"][target] = {"ok": False, "action": "not delivered", "reason": str(exc)}
    report["ok"] = all(t.get("ok") for t in report["targets"].values())
    return report
