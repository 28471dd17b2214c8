"""`kiosk run` never leaves a broker or a service behind: on SIGTERM (even mid-start) or its own death."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import broker
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_kiosk(tmp_path):
    env = os.environ | {
        "KIOSK_RUN_DIR": str(tmp_path / "run"),
        "KIOSK_BROKER__PORT": str(broker.free_port()),
        "KIOSK_BROKER__SECRETS_DIR": str(tmp_path / "secrets"),
        "KIOSK_WEB__PORT": str(broker.free_port()),
        "KIOSK_DASHBOARD__PORT": str(broker.free_port()),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--source", "sample"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("after_children", [2, 6], ids=["mid-start", "running"])
def test_sigterm_stops_everything(tmp_path, after_children):
    kiosk = start_kiosk(tmp_path)
    assert wait_for(lambda: len(children_of(kiosk.pid)) >= after_children, timeout=30)
    children = children_of(kiosk.pid)
    kiosk.send_signal(signal.SIGTERM)
    assert kiosk.wait(timeout=30) == 0
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=15)


def test_children_die_with_a_killed_supervisor(tmp_path):
    kiosk = start_kiosk(tmp_path)
    assert wait_for(lambda: len(children_of(kiosk.pid)) >= 7, timeout=30)  # broker + six services
    children = children_of(kiosk.pid)
    kiosk.kill()
    kiosk.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=15)
