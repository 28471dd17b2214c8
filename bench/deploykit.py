"""What the deploy tests and the deploy benchmark build: model copies, a model that fails its health check,
a maintainer key, and a real sshd on loopback standing for a remote kiosk."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiosk.broker import free_port, port_open
from kiosk.config import PROJECT_ROOT
from kiosk.emotion.labels import EMOTIONS
from kiosk.modelstore.manifest import file_entry, load_manifest, write_manifest

SHIPPED_EMOTION = PROJECT_ROOT / "models" / "emotion" / "kiosk-compact-cnn"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def emotion_model_copy(target: Path, version: str, padding_mb: float = 0.0) -> Path:
    """The shipped emotion model as a new version (optionally padded with a data file to a bundle size)."""
    shutil.copytree(SHIPPED_EMOTION, target)
    manifest = load_manifest(target)
    files = list(manifest.files)
    if padding_mb:
        (target / "padding.bin").write_bytes(os.urandom(int(padding_mb * 1e6)))
        files.append(file_entry(target, "padding.bin", role="data"))
    write_manifest(target, manifest.model_copy(update={"version": version, "files": files}))
    return target


def always_sad_model(target: Path, version: str = "9.9.9-sad") -> Path:
    """A valid ONNX emotion model with FER2013's labels that calls every face sad: it must fail its check."""
    import torch

    from kiosk.emotion import architectures
    from kiosk.emotion.export import ONNX_NAME, export_onnx, onnx_emotion_manifest
    from kiosk.emotion.train import NormalisedNet

    torch.manual_seed(0)
    net = NormalisedNet(architectures.build("compact-small"))
    last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[EMOTIONS.index("sad")] = 10.0
    target.mkdir(parents=True, exist_ok=True)
    export_onnx(net, target / ONNX_NAME)
    source = "built by the deploy tests: a model that fails its health check"
    write_manifest(target, onnx_emotion_manifest(target, "always-sad", version, source, "MIT"))
    return target


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    ssh: str  # the ssh command with options for this server


@contextlib.contextmanager
def loopback_sshd(workdir: Path) -> Iterator[Sshd]:
    """A real OpenSSH server on a free loopback port, key login only, for the current user."""
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_ed25519", workdir / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (workdir / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {process.stderr.read().decode(errors='replace')[-500:]}")
            time.sleep(0.05)
        ssh = (
            f"ssh -p {port} -i {client_key} -o BatchMode=yes -o StrictHostKeyChecking=no"
            f" -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        )
        yield Sshd(port, getpass.getuser(), ssh)
    finally:
        process.terminate()
        process.wait(timeout=10)
