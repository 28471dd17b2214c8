"""The maintainer's signing key is passphrase-protected: a copy of the file alone signs nothing.

The attack: someone copies ``keys/maintainer.key`` (a backup, a shared laptop) and tries to sign a bundle
that every kiosk would install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kiosk.modelstore.manifest import Manifest, file_entry, write_manifest


def kiosk_models(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "models", *args],
        input=stdin, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def a_model(path: Path) -> Path:
    path.mkdir()
    (path / "weights.bin").write_bytes(b"weights")
    manifest = Manifest(
        name="tiny", version="1.0.0", task="emotion", backend="onnx", files=[file_entry(path, "weights.bin")],
        source="the test", licence="MIT",
    )  # fmt: skip
    write_manifest(path, manifest)
    return path


def test_a_copied_key_without_its_passphrase_signs_nothing(tmp_path: Path) -> None:
    made = kiosk_models("keygen", "--out", str(tmp_path / "keys"), stdin="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    key = tmp_path / "keys" / "maintainer.key"
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key.stat().st_mode & 0o777 == 0o600
    model = a_model(tmp_path / "model")

    def sign(passphrase: str) -> subprocess.CompletedProcess:
        out = tmp_path / f"bundle-{len(passphrase)}.tar"
        return kiosk_models("bundle", str(model), "--key", str(key), "--out", str(out), stdin=passphrase + "\n")

    wrong = sign("not the passphrase")
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr, wrong.stderr
    empty = sign("")
    assert empty.returncode == 1 and "empty passphrase" in empty.stderr, empty.stderr
    right = sign("correct horse battery")
    assert right.returncode == 0, right.stderr


def test_keygen_refuses_no_passphrase_unless_asked_for_a_throwaway_key(tmp_path: Path) -> None:
    refused = kiosk_models("keygen", "--out", str(tmp_path / "a"), stdin="\n")
    assert refused.returncode == 2 and not (tmp_path / "a" / "maintainer.key").exists()
    throwaway = kiosk_models("keygen", "--out", str(tmp_path / "b"), "--no-passphrase")
    assert throwaway.returncode == 0
    assert (tmp_path / "b" / "maintainer.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
