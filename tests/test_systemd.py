"""The systemd units are valid: `systemd-analyze verify` on a copy pointing at this checkout."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.events import SERVICES

UNITS = Path(__file__).resolve().parent.parent / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_verify_clean(tmp_path):
    venv_bin = Path(sys.executable).parent
    for unit in UNITS.rglob("*"):
        if unit.is_file():
            target = tmp_path / unit.relative_to(UNITS)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(unit.read_text().replace("/opt/emotionai-kiosk/.venv/bin", str(venv_bin)))
    instances = [f"kiosk@{name}.service" for name in SERVICES]
    for instance in instances:
        (tmp_path / instance).symlink_to(tmp_path / "kiosk@.service")
    units = [tmp_path / "kiosk.target", tmp_path / "kiosk-broker.service", *(tmp_path / i for i in instances)]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
    )
    # verify exits 0 on unknown keys and bad values, so any line it prints is a failure
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, problems
