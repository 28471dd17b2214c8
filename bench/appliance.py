"""``make test-appliance``: the appliance as a kiosk gets it, under a real systemd, with its figures.

A fresh Debian 12 root (``debootstrap --variant=minbase``), ``make install DESTDIR=<root>`` into it, then
``systemd-nspawn --boot`` (the host's PID 1 need not be systemd: ``--register=no --keep-unit``). The container
shares the host's network, so from here the bench reads the kiosk page's event stream on 127.0.0.1:8080 and the
broker on 127.0.0.1:1883 with the installed ``monitor`` credential, and runs ``kiosk models deploy`` over SSH
(the container's sshd on 127.0.0.1:2222) exactly as ``make deploy`` does: the install runs on the kiosk through
``kiosk-admin``. The camera has no device in the container, so it shows the sample photo (a photo source).
The screen unit is masked: a container has no display (its unit is checked by ``tests/test_systemd.py``).

Figures (JSON on stdout): debootstrap and install time, installed size, boot to the first story on the page,
``make deploy`` to the new emotion model serving (its status names it), a failing model rolled back.
Not in CI: it needs root, a Debian mirror, PyPI and minutes. Reuses the root between runs unless ``--fresh``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.deploykit import always_sad_model, emotion_model_copy
from bench.machine import describe
from kiosk.broker import port_open
from kiosk.bus import BrokerAddress, Bus
from kiosk.config import PROJECT_ROOT
from kiosk.events import StatusPayload, Topics
from kiosk.modelstore.bundle import generate_key

logger = logging.getLogger("bench.appliance")

MIRROR = "http://deb.debian.org/debian"
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,mosquitto,espeak-ng,rsync,openssh-server,libgomp1"
SSH_PORT = 2222
KIOSK_ID = "kiosk1"


def run(command: list[str], timeout: float = 3600, **options) -> subprocess.CompletedProcess:
    logger.info("$ %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stdout[-1500:]}{result.stderr[-1500:]}")
    return result


def bootstrap(root: Path) -> float | None:
    """A minimal Debian 12 root with what the appliance runs on; None when reused."""
    if (root / ".bootstrapped").is_file():
        return None
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(root), MIRROR])
    (root / ".bootstrapped").touch()
    return time.perf_counter() - started


def install(root: Path, extras: str, keys: Path, ssh_key: Path) -> float:
    """``make install DESTDIR=root``, then what a test kiosk needs: the bench's maintainer key, sshd for deploy."""
    shutil.rmtree(root / "var/lib/emotionai-kiosk", ignore_errors=True)  # a fresh kiosk: no model deployed yet
    started = time.perf_counter()
    run(["make", "-C", str(PROJECT_ROOT), "-o", "setup", "install", f"DESTDIR={root}", f"INSTALL_EXTRAS={extras}"])
    seconds = time.perf_counter() - started
    screen = root / "etc/systemd/system/kiosk-screen.service"  # no display in a container: masked
    screen.unlink()
    screen.symlink_to("/dev/null")
    trusted = root / "etc/emotionai-kiosk/trusted-keys"
    trusted.mkdir(parents=True, exist_ok=True)
    shutil.copy(keys / "bench.pub", trusted / "bench.pub")
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/kiosk-bench.conf").write_text(
        f"Port {SSH_PORT}\nListenAddress 127.0.0.1\nPermitRootLogin prohibit-password\n"
    )
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(Path(f"{ssh_key}.pub").read_text())
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    return seconds


def monitor(root: Path) -> Bus:
    """The installed ``monitor`` account, from the host (the container shares its network)."""
    password = (root / "etc/emotionai-kiosk/credentials/broker-monitor").read_text().strip()
    bus = Bus(BrokerAddress("127.0.0.1", 1883, "monitor", password), client_id="bench-appliance", persistent=False)
    return bus


def first_story_on_page(deadline: float) -> float | None:
    """Seconds until the page's event stream carries a story (None: none before ``deadline``)."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080/events", timeout=10) as stream:
                for raw in stream:
                    if raw.decode().strip() == "event: story":
                        return time.monotonic()
                    if time.monotonic() > deadline:
                        return None
        except OSError:
            time.sleep(1)
    return None


def deploy(model: Path, key: Path, ssh_key: Path) -> dict:
    ssh = f"ssh -p {SSH_PORT} -i {ssh_key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes"
    command = [sys.executable, "-m", "kiosk", "models", "deploy", "--model", str(model), "--key", str(key)]
    result = subprocess.run(
        [*command, "--ssh", ssh, "root@127.0.0.1"], capture_output=True, text=True, timeout=900, check=False
    )
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        return {"ok": False, "stdout": result.stdout[-1500:], "stderr": result.stderr[-1500:]}


def add_staff_account(root: Path, ssh_key: Path) -> bool:
    """``kiosk-admin staff add-user`` over SSH, password on stdin: the account lands where the dashboard reads."""
    ssh = ["ssh", "-p", str(SSH_PORT), "-i", str(ssh_key), "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "root@127.0.0.1"]  # fmt: skip
    result = subprocess.run(
        [*ssh, "/opt/emotionai-kiosk/bin/kiosk-admin", "staff", "add-user", "carer"],
        input="a long enough password\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    users = root / "var/lib/emotionai-kiosk/dashboard/staff-users.json"
    if result.returncode != 0:
        logger.warning("kiosk-admin staff add-user failed: %s", result.stderr[-500:])
    return result.returncode == 0 and users.is_file() and "carer" in users.read_text()


def emotion_model_label(statuses: list[bytes]) -> str | None:
    return StatusPayload.model_validate_json(statuses[-1]).detail.get("model") if statuses else None


def bench(work: Path, fresh: bool, extras: str, boot_timeout: float) -> dict:
    root = work / "root"
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    figures: dict = {"extras": extras or "(none: template stories only)"}
    figures["debootstrap_s"] = bootstrap(root)
    keys = work / "keys"
    shutil.rmtree(keys, ignore_errors=True)
    generate_key(keys, "bench")  # a throwaway maintainer key (no passphrase) for this bench only
    ssh_key = keys / "ssh"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_key)])
    figures["install_s"] = round(install(root, extras, keys, ssh_key), 1)
    figures["installed_mb"] = round(
        sum(p.stat().st_size for p in (root / "opt/emotionai-kiosk").rglob("*") if p.is_file()) / 1e6
    )
    for port in (1883, 8080, 8081, SSH_PORT):
        if port_open(port):
            raise RuntimeError(f"port {port} is in use on this machine; the container shares its network")

    log = (work / "boot.log").open("w")
    booted = time.monotonic()
    container = subprocess.Popen(
        ["systemd-nspawn", "-D", str(root), "--boot", "--register=no", "--keep-unit", "--console=passive"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        story_at = first_story_on_page(booted + boot_timeout)
        figures["boot_to_first_story_s"] = round(story_at - booted, 1) if story_at else None
        if story_at is None:
            return figures | {"error": f"no story on the page within {boot_timeout:.0f} s (see {work / 'boot.log'})"}
        figures["staff_account"] = add_staff_account(root, ssh_key)
        topics, statuses, updates = Topics(KIOSK_ID), [], []
        bus = monitor(root)
        bus.subscribe(topics.status("emotion"), lambda message: statuses.append(bytes(message.payload)))
        bus.subscribe(topics.update("emotion"), lambda message: updates.append(bytes(message.payload)))
        story_status: list[bytes] = []  # which storyteller wrote (the LLM, or the template and why)
        bus.subscribe(topics.status("story"), lambda message: story_status.append(bytes(message.payload)))
        bus.start()
        bus.wait_subscribed(10)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                new = emotion_model_copy(Path(tmp) / "new", "1.2.0")
                started = time.monotonic()
                report = deploy(new, keys / "bench.key", ssh_key)
                figures["deploy"] = report
                serving = None
                while report.get("ok") and time.monotonic() - started < 120:
                    if emotion_model_label(statuses) == "kiosk-compact-cnn@1.2.0":
                        serving = time.monotonic() - started
                        break
                    time.sleep(0.2)
                figures["deploy_to_new_version_serving_s"] = round(serving, 2) if serving else None
                staff_sees = None  # the dashboard's retained models/emotion (Home Assistant's update entity)
                while time.monotonic() - started < 60:
                    if updates and json.loads(updates[-1]).get("installed_version") == "1.2.0":
                        staff_sees = time.monotonic() - started
                        break
                    time.sleep(0.2)
                figures["deploy_to_staff_topic_s"] = round(staff_sees, 2) if staff_sees else None
                bad = always_sad_model(Path(tmp) / "sad")
                started = time.monotonic()
                failing = deploy(bad, keys / "bench.key", ssh_key)
                figures["failing_deploy"] = failing
                figures["failing_deploy_rolled_back_s"] = round(time.monotonic() - started, 2)
                figures["serving_after_rollback"] = emotion_model_label(statuses)
                if story_status:
                    detail = StatusPayload.model_validate_json(story_status[-1]).detail
                    figures["storyteller"] = {key: detail.get(key) for key in ("generator", "problem")}
        finally:
            bus.stop()
    finally:
        container.send_signal(signal.SIGTERM)  # nspawn: an orderly poweroff of the container
        try:
            container.wait(90)
        except subprocess.TimeoutExpired:
            container.kill()
            container.wait()
        log.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/kiosk-appliance"))
    parser.add_argument("--fresh", action="store_true", help="debootstrap again")
    parser.add_argument("--extras", default="safety", help="INSTALL_EXTRAS for make install ('' : template only)")
    parser.add_argument("--boot-timeout", type=float, default=600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    if os.geteuid() != 0 or shutil.which("debootstrap") is None or shutil.which("systemd-nspawn") is None:
        print("make test-appliance needs root, debootstrap and systemd-nspawn (apt-get install debootstrap "
              "systemd-container)", file=sys.stderr)  # fmt: skip
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    figures = bench(args.work, args.fresh, args.extras, args.boot_timeout)
    print(json.dumps(describe(test="appliance") | figures, indent=1))
    return 0 if figures.get("deploy_to_new_version_serving_s") and not figures.get("error") else 1


if __name__ == "__main__":
    raise SystemExit(main())
