"""The systemd units as `make install` renders them: `systemd-analyze verify` clean, and what each promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.appliance import Layout, install
from kiosk.events import SERVICES

CHECKOUT = Path(__file__).resolve().parent.parent
UNITS = CHECKOUT / "systemd"


@pytest.fixture
def rendered(tmp_path: Path) -> Layout:
    """The units rendered under a temporary root, their prefix's venv pointing at this checkout's."""
    prefix = tmp_path / "opt" / "emotionai-kiosk"
    layout = Layout(root=tmp_path / "root", prefix=prefix, sysconfdir=tmp_path / "root" / "etc" / "emotionai-kiosk")
    prefix.mkdir(parents=True)
    (prefix / "venv").symlink_to(Path(sys.executable).parent.parent)
    install(layout, UNITS, models=None, keys=None, gpu=True)
    return layout


def unit(layout: Layout, name: str) -> str:
    return (layout.at(layout.unitdir) / name).read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_rendered_units_verify_clean(rendered: Layout) -> None:
    unitdir = rendered.at(rendered.unitdir)
    instances = [f"kiosk@{name}.service" for name in SERVICES]
    for instance in instances:
        (unitdir / instance).symlink_to(unitdir / "kiosk@.service")
    units = ["kiosk.target", "kiosk-broker.service", "kiosk-screen.service", *instances]
    if shutil.which("xinit") is None:
        units.remove("kiosk-screen.service")  # make test installs xinit; verify checks ExecStart exists
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(unitdir / name) for name in units)],
        capture_output=True,
        text=True,
        env={"SYSTEMD_UNIT_PATH": f"{unitdir}:"},
    )
    # verify exits 0 on unknown keys and bad values, so any line it prints is a failure
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, problems


def test_no_placeholder_is_left(rendered: Layout) -> None:
    for path in rendered.root.rglob("*"):
        if path.is_file() and path.suffix != ".pub":
            assert "@PREFIX@" not in path.read_text() and "@STATEDIR@" not in path.read_text(), path


def test_the_gpu_is_opened_to_emotion_and_illustrate_only(rendered: Layout) -> None:
    unitdir = rendered.at(rendered.unitdir)
    assert "PrivateDevices=yes" in unit(rendered, "kiosk@.service")
    opened = sorted(p.parent.name for p in unitdir.glob("*.service.d/gpu.conf"))
    assert opened == ["kiosk@emotion.service.d", "kiosk@illustrate.service.d"]
    gpu = (unitdir / "kiosk@emotion.service.d" / "gpu.conf").read_text()
    assert "PrivateDevices=no" in gpu and "DeviceAllow=/dev/nvidiactl rw" in gpu
    assert (rendered.at(rendered.prefix) / "share" / "systemd" / "gpu.conf").read_text() == gpu


def test_the_screen_starts_a_full_screen_browser_with_sound_no_cursor_no_blanking(rendered: Layout) -> None:
    screen = unit(rendered, "kiosk-screen.service")
    exec_start = next(line for line in screen.splitlines() if line.startswith("ExecStart="))
    browser, server = exec_start.split(" -- ")
    assert "/usr/bin/chromium --kiosk" in browser and "--autoplay-policy=no-user-gesture-required" in browser
    assert browser.endswith("http://127.0.0.1:8080/")
    assert "-nocursor" in server.split() and "-s 0 -dpms" in server
    assert "Restart=always" in screen and "User=kiosk-screen" in screen
    assert "kiosk-screen.service" in unit(rendered, "kiosk.target")


def test_the_units_bound_the_heap_as_kiosk_run_does():
    """The same glibc heap settings under systemd as under `kiosk run` (a soak found the story service and
    the narrator growing without them)."""
    from kiosk.supervisor import HEAP_ENV

    unit = (Path(__file__).resolve().parent.parent / "systemd" / "kiosk@.service").read_text()
    line = next(line for line in unit.splitlines() if "MALLOC_" in line and line.startswith("Environment="))
    assert dict(pair.split("=", 1) for pair in line.removeprefix("Environment=").split()) == HEAP_ENV
