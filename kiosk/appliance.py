"""``kiosk appliance install|uninstall``: the files ``make install`` puts on a kiosk beside its Python environment.

Everything is written under a root (``DESTDIR``; ``/`` on the kiosk) and named for where it will live, so one
code path serves a real install, a staging directory and the tests:

- the systemd units from ``systemd/`` with ``@PREFIX@``, ``@SYSCONFDIR@`` and ``@STATEDIR@`` filled in, the
  camera's device drop-in, the GPU drop-in (installed for emotion and illustrate with ``gpu=True``), the
  ``kiosk`` and ``kiosk-screen`` accounts (sysusers.d) and the state directories (tmpfiles.d), so even a
  staged install gets its users and directories from systemd at boot;
- ``<sysconfdir>/kiosk.toml`` (written once, edits kept), one random broker password per account in
  ``<sysconfdir>/credentials`` (mode 600, kept), the broker's config, ACL and password file (hashes only);
- ``<prefix>/bin/kiosk-admin`` (a kiosk command as the services run it: what ``make deploy`` runs), the
  shipped models, the trusted maintainer keys and the README.

``uninstall`` removes the program, units and drop-ins and keeps settings, credentials and data unless
``purge``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template

from kiosk.broker import BROKER_DIR, USERS, ensure_passwords, write_password_file

logger = logging.getLogger(__name__)

UNIT_FILES = ("kiosk@.service", "kiosk-broker.service", "kiosk-screen.service", "kiosk.target")
DROP_INS = ("kiosk@camera.service.d/camera.conf",)
GPU_SERVICES = ("emotion", "illustrate")
BROKER_CREDENTIAL = "/run/credentials/kiosk-broker.service/broker-passwd"


@dataclass(frozen=True)
class Layout:
    """Where things live on the kiosk (absolute paths), and the root they are written under."""

    root: Path = Path("/")
    prefix: Path = Path("/opt/emotionai-kiosk")
    sysconfdir: Path = Path("/etc/emotionai-kiosk")
    statedir: Path = Path("/var/lib/emotionai-kiosk")
    unitdir: Path = Path("/etc/systemd/system")
    libdir: Path = Path("/usr/lib")

    def at(self, path: Path) -> Path:
        """``path`` (absolute, as on the kiosk) under the root being written."""
        return self.root / Path(path).relative_to("/")

    def render(self, text: str) -> str:
        for name, value in (("PREFIX", self.prefix), ("SYSCONFDIR", self.sysconfdir), ("STATEDIR", self.statedir)):
            text = text.replace(f"@{name}@", str(value))
        return text


def _write(path: Path, text: str, mode: int, written: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    written.append(path)


def readable_by_all(tree: Path) -> None:
    """Models are read by the ``kiosk`` user whatever modes the checkout gave them (a pulled model's directory
    comes from ``mkdtemp``, mode 700): directories 755, files 644."""
    os.chmod(tree, 0o755)
    for path in tree.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


def broker_config(layout: Layout) -> str:
    """The appliance's mosquitto.conf: the project's template with the appliance's paths."""
    return Template((BROKER_DIR / "mosquitto.conf").read_text()).substitute(
        password_file=BROKER_CREDENTIAL,
        acl_file=layout.sysconfdir / "broker" / "acl",
        port=1883,
        data_dir=layout.statedir / "broker",
        user="mosquitto",
        log_dest="stderr",
        tls_listener="# (no TLS listener: see the README, Remote dashboards)",
    )


def install(layout: Layout, units: Path, models: Path | None, keys: Path | None, gpu: bool = False) -> list[Path]:
    """Write every appliance file under ``layout.root``; the paths written, in order."""
    written: list[Path] = []
    unitdir = layout.at(layout.unitdir)
    for name in (*UNIT_FILES, *DROP_INS):
        _write(unitdir / name, layout.render((units / name).read_text()), 0o644, written)
    gpu_conf = layout.render((units / "gpu.conf").read_text())
    _write(layout.at(layout.prefix / "share" / "systemd" / "gpu.conf"), gpu_conf, 0o644, written)
    for service in GPU_SERVICES if gpu else ():
        _write(unitdir / f"kiosk@{service}.service.d" / "gpu.conf", gpu_conf, 0o644, written)
    libdir = layout.at(layout.libdir)
    for kind in ("sysusers", "tmpfiles"):
        text = layout.render((units / f"emotionai-kiosk.{kind}").read_text())
        _write(libdir / f"{kind}.d" / "emotionai-kiosk.conf", text, 0o644, written)
    admin = layout.render((units / "kiosk-admin").read_text())
    _write(layout.at(layout.prefix / "bin" / "kiosk-admin"), admin, 0o755, written)

    etc = layout.at(layout.sysconfdir)
    settings = etc / "kiosk.toml"
    if not settings.exists():  # the technician's edits survive a reinstall
        _write(settings, layout.render((units / "kiosk.toml").read_text()), 0o644, written)
    credentials = etc / "credentials"
    passwords = ensure_passwords(credentials, USERS)  # kept when present: running services keep working
    written.extend(credentials / f"broker-{user}" for user in USERS)
    _write(etc / "broker" / "mosquitto.conf", broker_config(layout), 0o644, written)
    _write(etc / "broker" / "acl", (BROKER_DIR / "acl").read_text(), 0o644, written)
    write_password_file(etc / "broker" / "passwd", passwords)
    written.append(etc / "broker" / "passwd")
    for public in sorted(keys.glob("*.pub")) if keys and keys.is_dir() else []:
        target = etc / "trusted-keys" / public.name
        _write(target, public.read_text(), 0o644, written)

    share = layout.at(layout.prefix)
    if models is not None:
        shutil.copytree(models, share / "models", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        readable_by_all(share / "models")
        written.append(share / "models")
    readme = units.parent / "README.md"
    if readme.is_file():
        _write(share / "README.md", readme.read_text(), 0o644, written)
    return written


def uninstall(layout: Layout, purge: bool = False) -> list[Path]:
    """Remove the program and its units; settings, credentials and data only with ``purge``."""
    unitdir = layout.at(layout.unitdir)
    removed = [unitdir / name for name in UNIT_FILES]
    removed += [unitdir / f"kiosk@{name}.service.d" for name in ("camera", *GPU_SERVICES)]
    removed += [layout.at(layout.libdir / kind / "emotionai-kiosk.conf") for kind in ("sysusers.d", "tmpfiles.d")]
    removed.append(layout.at(layout.prefix))
    if purge:
        removed += [layout.at(layout.sysconfdir), layout.at(layout.statedir)]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk appliance", description="install the kiosk's system files")
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("--root", type=Path, default=Path("/"), help="write under this directory (DESTDIR)")
    parser.add_argument("--prefix", type=Path, default=Layout.prefix)
    parser.add_argument("--sysconfdir", type=Path, default=Layout.sysconfdir)
    parser.add_argument("--units", type=Path, help="the checkout's systemd/ folder (install)")
    parser.add_argument("--models", type=Path, help="the models to ship (a checkout's models/)")
    parser.add_argument("--keys", type=Path, help="trusted maintainer public keys (*.pub)")
    parser.add_argument("--gpu", action="store_true", help="open the GPU to the emotion and illustrate services")
    parser.add_argument("--purge", action="store_true", help="uninstall: also settings, credentials and data")
    args = parser.parse_args(argv)
    layout = Layout(root=args.root, prefix=args.prefix, sysconfdir=args.sysconfdir)
    if args.action == "uninstall":
        for path in uninstall(layout, args.purge):
            print(f"removed {path}")
        return 0
    if args.units is None:
        parser.error("install needs --units (the checkout's systemd/ folder)")
    for path in install(layout, args.units, args.models, args.keys, args.gpu):
        print(path)
    return 0
