"""The package works outside a checkout: built as a wheel, installed elsewhere, it carries its broker config,
ACL and page files, keeps its state outside the code, and starts a real broker from its package data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent

PACKAGE_DATA = [
    "kiosk/broker/acl", "kiosk/broker/mosquitto.conf", "kiosk/broker/make-certs.sh",
    "kiosk/web/templates/kiosk.html", "kiosk/dashboard/templates/login.html",
]  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(CHECKOUT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return next(out.glob("emotionai_kiosk-*.whl"))


def test_the_wheel_carries_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing, missing
    assert any(name.startswith("kiosk/web/static/") for name in names)
    assert not any(name.startswith(("tests/", "bench/", "models/")) for name in names)


@pytest.mark.integration
def test_installed_elsewhere_it_keeps_state_outside_and_starts_its_broker(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    probe = """
import json, sys
from kiosk import broker
from kiosk.config import IN_CHECKOUT, PROJECT_ROOT, load_settings
settings = load_settings(environ={})
files = broker.render(settings.run_dir, broker.free_port(), settings.broker.secrets_dir)
process = broker.MosquittoProcess(files)
process.start()
process.stop()
print(json.dumps({"in_checkout": IN_CHECKOUT, "package": str(PROJECT_ROOT), "run_dir": str(settings.run_dir),
                  "model": str(settings.emotion.model_dir), "config": str(files.config)}))
"""
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))  # the dependencies only
    env = os.environ | {"PYTHONPATH": f"{target}:{site_packages}", "XDG_STATE_HOME": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert not found["in_checkout"] and found["package"] == str(target)
    assert found["run_dir"] == str(tmp_path / "state" / "emotionai-kiosk")
    assert found["config"].startswith(str(tmp_path / "state"))
    assert found["model"] == str(Path(sys.prefix) / "share/emotionai-kiosk/models/emotion/kiosk-compact-cnn")


def test_the_runtime_install_is_lean() -> None:
    """torch, diffusers and the dev tools are extras: `pip install .` alone pulls none of them."""
    import tomllib

    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]
    base = {
        dependency.split(";")[0].split("=")[0].split(">")[0].split("<")[0].strip()
        for dependency in project["dependencies"]
    }
    assert not base & {"torch", "torchvision", "diffusers", "peft", "pytest", "ruff", "selenium", "matplotlib"}, base
    extras = project["optional-dependencies"]
    assert {"safety", "diffusion", "train", "dev"} <= set(extras)
    assert any(d.startswith("diffusers") for d in extras["diffusion"])
