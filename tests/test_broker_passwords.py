"""Broker passwords reach the password file without ever being on a command line, and the broker accepts them.

The attack: a local user watches every process's command line (``ps``, ``/proc/<pid>/cmdline``) while the
kiosk writes its broker password file. ``mosquitto_passwd -b FILE USER PASSWORD`` shows each password there.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from kiosk import broker
from tests.conftest import RawClient


def _all_command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue  # the process ended while we looked
    return lines


def test_no_password_appears_on_any_command_line_while_the_file_is_written(tmp_path: Path) -> None:
    passwords = broker.ensure_passwords(tmp_path / "secrets")
    seen: list[bytes] = []
    writing = threading.Event()

    def watch() -> None:
        while writing.is_set():
            seen.extend(line for line in _all_command_lines() if any(p.encode() in line for p in passwords.values()))

    writing.set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):  # several rounds, so a short-lived helper process would be caught
            broker.write_password_file(tmp_path / "passwd", passwords)
    finally:
        writing.clear()
        watcher.join()
    assert not seen, f"a password was visible on a command line: {seen[0][:80]!r}"
    text = (tmp_path / "passwd").read_text()
    assert not any(password in text for password in passwords.values()), "a password was stored in clear"
    assert stat.S_IMODE(os.stat(tmp_path / "passwd").st_mode) == 0o600


def test_the_hash_is_mosquittos_own_format() -> None:
    salt = bytes(range(12))
    assert broker.hash_password("secret", salt).startswith("$7$101$AAECAwQFBgcICQoL$")


@pytest.mark.integration
def test_the_broker_accepts_the_written_passwords_and_refuses_a_wrong_one(mosquitto, tmp_path: Path) -> None:
    passwords = broker.ensure_passwords(tmp_path / "secrets")  # the fixture's broker was rendered from these
    good = RawClient(mosquitto.files.port, "monitor", passwords["monitor"])
    bad = RawClient(mosquitto.files.port, "monitor", passwords["monitor"] + "x")
    try:
        assert good.connect() == "Success"
        assert bad.connect() == "Not authorized"
    finally:
        good.close()
        bad.close()
