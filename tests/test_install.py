"""`make install` into a DESTDIR, checked file by file; reinstall keeps edits; uninstall keeps data unless PURGE;
and `make deploy`'s install runs with the very settings the systemd services load (the bug it fixes: a deployed
model landed in a directory the services never read)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from kiosk.broker import USERS
from kiosk.modelstore.deploy import DEFAULT_REMOTE_DIR, DEFAULT_REMOTE_KIOSK

CHECKOUT = Path(__file__).resolve().parent.parent
PREFIX, ETC, STATE = "/opt/emotionai-kiosk", "/etc/emotionai-kiosk", "/var/lib/emotionai-kiosk"

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or shutil.which("systemctl") is None, reason="make or systemctl not installed"
)


def make(*targets: str, destdir: Path, **variables: str) -> subprocess.CompletedProcess:
    """The real Makefile target; `-o setup`: the checkout's environment is already set up (make test did it)."""
    assignments = [f"{key}={value}" for key, value in {"DESTDIR": str(destdir), **variables}.items()]
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", "setup", "-C", str(CHECKOUT), *targets, *assignments],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    models = tmp_path / "models" / "emotion" / "tiny"
    models.mkdir(parents=True)
    (models / "manifest.json").write_text("{}")
    os.chmod(models / "manifest.json", 0o600)
    os.chmod(models, 0o700)  # as `kiosk models pull` left a model: the services' user must still read it
    root = tmp_path / "root"
    make("install-files", "install-enable", destdir=root, MODELS=str(tmp_path / "models"), GPU="1")
    return root


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_destdir_install_file_by_file(staged: Path) -> None:
    expected = {
        f"etc/systemd/system/{name}": 0o644
        for name in (
            "kiosk@.service", "kiosk-broker.service", "kiosk-screen.service", "kiosk.target",
            "kiosk@camera.service.d/camera.conf", "kiosk@emotion.service.d/gpu.conf",
            "kiosk@illustrate.service.d/gpu.conf",
        )
    } | {
        "usr/lib/sysusers.d/emotionai-kiosk.conf": 0o644,
        "usr/lib/tmpfiles.d/emotionai-kiosk.conf": 0o644,
        f"{PREFIX[1:]}/bin/kiosk-admin": 0o755,
        f"{PREFIX[1:]}/share/systemd/gpu.conf": 0o644,
        f"{PREFIX[1:]}/README.md": 0o644,
        f"{PREFIX[1:]}/models/emotion/tiny/manifest.json": 0o644,
        f"{ETC[1:]}/kiosk.toml": 0o644,
        f"{ETC[1:]}/broker/mosquitto.conf": 0o644,
        f"{ETC[1:]}/broker/acl": 0o644,
        f"{ETC[1:]}/broker/passwd": 0o600,
        **{f"{ETC[1:]}/credentials/broker-{user}": 0o600 for user in USERS},
    }  # fmt: skip
    for relative, wanted in expected.items():
        path = staged / relative
        assert path.is_file(), f"missing: /{relative}"
        assert mode(path) == wanted, f"/{relative}: mode {mode(path):o}, expected {wanted:o}"
    assert mode(staged / ETC[1:] / "credentials") == 0o700
    assert mode(staged / PREFIX[1:] / "models/emotion/tiny") == 0o755
    installed = {str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file() and not p.is_symlink()}
    assert installed - set(expected) == set(), f"unexpected files: {sorted(installed - set(expected))}"
    # enabled for the first boot, and Debian's own broker (same port) masked
    wants = staged / "etc/systemd/system/multi-user.target.wants/kiosk.target"
    assert wants.is_symlink()
    assert os.readlink(staged / "etc/systemd/system/mosquitto.service") == "/dev/null"


def test_the_password_file_holds_the_credentials_hashed(staged: Path) -> None:
    lines = dict(line.split(":", 1) for line in (staged / ETC[1:] / "broker/passwd").read_text().splitlines())
    assert sorted(lines) == sorted(USERS)
    for user, line in lines.items():
        password = (staged / ETC[1:] / f"credentials/broker-{user}").read_text().strip()
        _, seven, iterations, salt, digest = line.split("$")
        assert seven == "7" and password not in line
        again = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
        assert base64.b64encode(again).decode() == digest, user
    conf = (staged / ETC[1:] / "broker/mosquitto.conf").read_text()
    assert "password_file /run/credentials/kiosk-broker.service/broker-passwd" in conf
    broker_unit = (staged / "etc/systemd/system/kiosk-broker.service").read_text()
    assert f"LoadCredential=broker-passwd:{ETC}/broker/passwd" in broker_unit


def test_a_reinstall_keeps_settings_and_credentials_and_uninstall_keeps_data(staged: Path, tmp_path: Path) -> None:
    settings = staged / ETC[1:] / "kiosk.toml"
    settings.write_text(settings.read_text().replace('kiosk_id = "kiosk1"', 'kiosk_id = "playroom-2"'))
    credential = (staged / ETC[1:] / "credentials/broker-web").read_text()
    state = staged / STATE[1:] / "models" / "emotion"
    state.mkdir(parents=True)
    make("install-files", destdir=staged, MODELS=str(tmp_path / "models"))
    assert 'kiosk_id = "playroom-2"' in settings.read_text()
    assert (staged / ETC[1:] / "credentials/broker-web").read_text() == credential

    make("uninstall", destdir=staged)
    assert not (staged / PREFIX[1:]).exists()
    assert not (staged / "etc/systemd/system/kiosk@.service").exists()
    assert not (staged / "etc/systemd/system/multi-user.target.wants/kiosk.target").exists()
    assert settings.is_file() and state.is_dir(), "uninstall removed settings or data"
    make("uninstall", destdir=staged, PURGE="1")
    assert not (staged / ETC[1:]).exists() and not (staged / STATE[1:]).exists()


def _environment(text: str) -> dict[str, str]:
    return dict(re.findall(r"Environment=(KIOSK_[A-Z_]+)=(\S+)", text))


def test_deploy_installs_with_the_settings_the_services_load(staged: Path) -> None:
    service = _environment((staged / "etc/systemd/system/kiosk@.service").read_text())
    admin_text = (staged / PREFIX[1:] / "bin/kiosk-admin").read_text()
    admin = _environment(admin_text)
    assert admin["KIOSK_CONFIG"] == service["KIOSK_CONFIG"] == f"{ETC}/kiosk.toml"
    assert admin["KIOSK_MODELS__INSTALLED_DIR"] == service["KIOSK_MODELS__INSTALLED_DIR"] == f"{STATE}/models"
    settings = tomllib.loads((staged / ETC[1:] / "kiosk.toml").read_text())
    assert settings["models"]["installed_dir"] == service["KIOSK_MODELS__INSTALLED_DIR"]
    assert "--uid=kiosk" in admin_text and f"LoadCredential=broker-deploy:{ETC}/credentials/broker-deploy" in admin_text
    assert "User=kiosk\n" in (staged / "etc/systemd/system/kiosk@.service").read_text()
    # what `kiosk models deploy` runs on a kiosk by default is what make install put there
    assert f"{PREFIX}/bin/kiosk-admin" == DEFAULT_REMOTE_KIOSK
    tmpfiles = (staged / "usr/lib/tmpfiles.d/emotionai-kiosk.conf").read_text()
    assert f"d {DEFAULT_REMOTE_DIR} 0750 kiosk kiosk" in tmpfiles
    makefile = subprocess.run(
        ["make", "-n", "-o", "setup", "-C", str(CHECKOUT), "deploy", "KIOSKS=root@kiosk1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f'--remote-kiosk "{PREFIX}/bin/kiosk-admin" --remote-dir "{STATE}/incoming"' in makefile


def test_the_staged_venv_builds_without_destdir_in_their_environment(tmp_path: Path) -> None:
    """make exports DESTDIR to recipes; llama.cpp's CMake install honours it and left its libraries outside the
    wheel (found by make test-appliance: the story service had no LLM). Every pip build must run without it."""
    plan = subprocess.run(
        ["make", "-n", "-o", "setup", "-C", str(CHECKOUT), "install-venv", f"DESTDIR={tmp_path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    installs = [line for line in plan.splitlines() if " -m pip install" in line]
    assert len(installs) == 2 and all(line.startswith("env -u DESTDIR ") for line in installs), installs
    assert "--no-cache-dir" in installs[0] and "libllama.so" in plan
    assert "/usr/bin/python3 -m venv" in plan  # Debian's Python: the units run without anyone's PATH
