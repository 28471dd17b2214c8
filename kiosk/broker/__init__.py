"""Render the project's Mosquitto config into a run directory and run the broker (development, tests).

The config template and the ACL are package data beside this module (``kiosk/broker/``), so an installed
package renders them as a checkout does; ``make install`` renders the same files for the appliance
(``kiosk install-broker``). This module is also what ``kiosk run`` and the test fixtures use to start a real
broker on a loopback port with per-service passwords.

The password file is written here, hashed as Mosquitto 2 hashes (``$7$``: PBKDF2-SHA512, 101 iterations, a
12-byte salt) and never passed to ``mosquitto_passwd -b``: a password on a command line is readable by every
user of the machine in ``/proc/<pid>/cmdline`` (``ps``) while the tool runs.
"""

from __future__ import annotations

import base64
import ctypes
import getpass
import hashlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from kiosk.config import TlsListenerConfig

logger = logging.getLogger(__name__)

BROKER_DIR = Path(__file__).resolve().parent
PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes; the broker reads the count from each line
PR_SET_PDEATHSIG = 1
# One account per process that talks to the broker. The broker makes a client's id its account name
# (use_username_as_clientid), so no account can take over another's session, and a second connection with
# one account replaces the first: `supervisor` (kiosk run's status watcher) and `homeassistant` exist so that
# they never share an account with `monitor` or `staff` clients running beside them.
USERS = (
    "camera", "emotion", "story", "illustrate", "narrate", "web", "dashboard", "deploy", "monitor", "supervisor",
    "staff", "homeassistant",
)  # fmt: skip
# Accounts whose service deletes a command the broker stored (they may read and write cmd/+/set).
CLEARS_STORED_COMMANDS = ("dashboard",)


class BrokerError(RuntimeError):
    """Mosquitto is missing, misconfigured or did not start."""


def die_with_parent() -> None:
    """In a child process: receive SIGTERM when the parent dies, so no broker or service is orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the supervisor's own cleanup still stops its children


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def ensure_passwords(secrets_dir: Path, users: tuple[str, ...] = USERS) -> dict[str, str]:
    """One random password per account, kept in ``secrets_dir/broker-<user>`` (mode 600)."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    passwords = {}
    for user in users:
        path = secrets_dir / f"broker-{user}"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            os.chmod(path, 0o600)
        passwords[user] = path.read_text().strip()
    return passwords


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A Mosquitto 2 password hash (``$7$``), as ``mosquitto_passwd`` writes it, without running it."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_password_file(path: Path, passwords: dict[str, str], mode: int = 0o600) -> None:
    """The broker's password file: one ``user:hash`` line per account, created with ``mode`` (never wider)."""
    lines = "".join(f"{user}:{hash_password(password)}\n" for user, password in passwords.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(lines)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


@dataclass(frozen=True)
class BrokerFiles:
    config: Path
    data_dir: Path
    port: int


def tls_listener(port: int, bind: str, cert_dir: Path) -> str:
    """The TLS listener block: server certificate from ``cert_dir`` (kiosk/broker/make-certs.sh), TLS ≥ 1.2.

    ``per_listener_settings false`` makes the passwords and the ACL apply here exactly as on loopback;
    ``use_username_as_clientid`` is a listener option, so it is set here as well.
    """
    for name in ("ca.crt", "server.crt", "server.key"):
        if not (cert_dir / name).is_file():
            raise BrokerError(f"TLS listener: {cert_dir / name} is missing (make it with `make certs`)")
    return "\n".join(
        [
            "# TLS for remote staff dashboards: same accounts and ACL as loopback.",
            f"listener {port} {bind}",
            "use_username_as_clientid true",
            f"cafile {cert_dir / 'ca.crt'}",
            f"certfile {cert_dir / 'server.crt'}",
            f"keyfile {cert_dir / 'server.key'}",
            "tls_version tlsv1.2",
            "require_certificate false",
        ]
    )


def render(
    run_dir: Path, port: int, secrets_dir: Path, log_file: Path | None = None, tls: TlsListenerConfig | None = None
) -> BrokerFiles:
    """Write mosquitto.conf and the password file for a broker on ``port`` under ``run_dir``."""
    broker_dir = run_dir / "broker"
    data_dir = broker_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    password_file = broker_dir / "passwd"
    write_password_file(password_file, ensure_passwords(secrets_dir))
    acl_file = broker_dir / "acl"
    shutil.copyfile(BROKER_DIR / "acl", acl_file)
    os.chmod(acl_file, 0o600)
    text = Template((BROKER_DIR / "mosquitto.conf").read_text()).substitute(
        password_file=password_file,
        acl_file=acl_file,
        port=port,
        data_dir=data_dir,
        user=getpass.getuser(),
        log_dest=f"file {log_file}" if log_file else "stderr",
        tls_listener=tls_listener(tls.port, tls.bind, tls.cert_dir) if tls else "# (no TLS listener configured)",
    )
    config = broker_dir / "mosquitto.conf"
    config.write_text(text)
    return BrokerFiles(config, data_dir, port)


class MosquittoProcess:
    """A Mosquitto broker run from rendered files; start, stop and restart keep its persistence."""

    def __init__(self, files: BrokerFiles) -> None:
        self.files = files
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise BrokerError("mosquitto not found: install the mosquitto package (make setup does)")
        self.process = subprocess.Popen(
            [binary, "-c", str(self.files.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.files.port):
            if self.process.poll() is not None:
                raise BrokerError(f"mosquitto exited: {self.process.stderr.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"mosquitto did not listen on port {self.files.port} in {timeout} s")
            time.sleep(0.05)
        logger.info("mosquitto listening on 127.0.0.1:%d", self.files.port)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exited(self) -> int | None:
        """The exit code once the broker has died or stopped, else None."""
        return self.process.poll() if self.process is not None else None

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
