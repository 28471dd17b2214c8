"""Remote model update figures: deploy time of a 20 MB bundle to one kiosk (over SSH on loopback and into a
local kiosk directory), rollback time after a failing health check, and the staff login rate limit.

Medians of 3 runs; JSON on stdout (make bench-deploy).
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench import machine
from bench.deploykit import SHIPPED_EMOTION, always_sad_model, emotion_model_copy, loopback_sshd
from kiosk import broker
from kiosk.config import BrokerConfig, ModelsConfig, Settings
from kiosk.dashboard.accounts import StaffAccounts
from kiosk.dashboard.app import StaffFeed, create_staff_app
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.modelstore.bundle import build_bundle, generate_key, load_private_key
from kiosk.modelstore.deploy import deploy
from kiosk.modelstore.install import install_bundle

RUNS = 3
BUNDLE_MB = 20.0


def kiosk_settings(root: Path, port: int, trusted: Path) -> Settings:
    return Settings(
        run_dir=root / "run",
        broker=BrokerConfig(port=port, secrets_dir=root / "secrets"),
        models=ModelsConfig(installed_dir=root / "models", trusted_keys_dir=trusted),
    )


def login_limit() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        accounts = StaffAccounts(Path(tmp) / "users.json")
        accounts.set_password("carer", "correct horse battery")
        throttle = LoginThrottle(attempts=5, window_s=300)
        app = create_staff_app(accounts, throttle, StaffFeed(), dict, dict, lambda a, v: None, b"k" * 32)
        client = app.test_client()
        attempts = 0
        while True:
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            response = client.post("/login", data={"name": "carer", "password": "guess", "csrf": token})
            attempts += 1
            if response.status_code == 429:
                return {
                    "failed_logins_allowed": attempts - 1,
                    "window_s": throttle.window_s,
                    "retry_after_s": int(response.headers["Retry-After"]),
                    "keys": "per client address and per account name",
                }


def main() -> int:
    results: dict = {"benchmark": "deploy", "machine": machine.describe(), "runs": RUNS}
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        tmp = Path(tmp)
        files = broker.render(tmp / "broker", broker.free_port(), tmp / "kiosk" / "secrets", log_file=tmp / "mq.log")
        mosquitto = broker.MosquittoProcess(files)
        mosquitto.start()
        try:
            private, public = generate_key(tmp / "keys", "maintainer")
            trusted = tmp / "trusted"
            trusted.mkdir()
            shutil.copy(public, trusted)
            settings = kiosk_settings(tmp / "kiosk", files.port, trusted)
            config = tmp / "kiosk.json"
            config.write_text(settings.model_dump_json())
            ssh_times, local_times, sizes = [], [], []
            shipped_mb = sum(f.stat().st_size for f in SHIPPED_EMOTION.iterdir() if f.is_file()) / 1e6
            with loopback_sshd(tmp / "sshd") as sshd:
                for run in range(RUNS):
                    model = emotion_model_copy(tmp / f"model-{run}", f"2.0.{run}", padding_mb=BUNDLE_MB - shipped_mb)
                    remote_kiosk = f"env KIOSK_CONFIG={config} {sys.executable} -m kiosk"
                    report = deploy(
                        model, private, [f"{sshd.user}@127.0.0.1"], keys_dir=trusted, ssh=sshd.ssh,
                        remote_dir=str(tmp / "incoming"), remote_kiosk=remote_kiosk,
                    )  # fmt: skip
                    outcome = report["targets"][f"{sshd.user}@127.0.0.1"]
                    assert outcome["ok"], outcome
                    ssh_times.append(outcome["deploy_s"] + report["build_s"])
                    sizes.append(report["bundle_mb"])
            for run in range(RUNS):
                local = tmp / f"local-kiosk-{run}"
                local.mkdir()
                local_settings = kiosk_settings(local, files.port, trusted)
                local_settings.broker.secrets_dir = settings.broker.secrets_dir
                (local / "kiosk.json").write_text(local_settings.model_dump_json())
                model = tmp / f"model-{run}"
                report = deploy(model, private, [str(local)], keys_dir=trusted)
                outcome = report["targets"][str(local)]
                assert outcome["ok"], outcome
                local_times.append(outcome["deploy_s"] + report["build_s"])
            rollback_times = []
            key = load_private_key(private)
            for run in range(RUNS):
                bad = build_bundle(always_sad_model(tmp / f"sad-{run}", f"9.9.{run}"), key, tmp / f"sad-{run}.tar")
                outcome = install_bundle(settings, bad.path)
                assert outcome.action == "rolled back", outcome
                rollback_times.append(outcome.seconds)
        finally:
            mosquitto.stop()
    results["deploy_20mb"] = {
        "bundle_mb": statistics.median(sizes),
        "over_ssh_loopback_s_median": round(statistics.median(ssh_times), 2),
        "over_ssh_loopback_s_all": [round(t, 2) for t in ssh_times],
        "local_directory_s_median": round(statistics.median(local_times), 2),
        "steps": "build + sign + verify bundle, rsync, unpack, verify signature and sha256, switch, health check",
    }
    results["rollback_after_failing_health_check_s"] = {
        "median": round(statistics.median(rollback_times), 2),
        "all": [round(t, 2) for t in rollback_times],
        "steps": "unpack, verify, switch, health check fails (known smiling face → sad), switch back, delete",
    }
    results["staff_login_rate_limit"] = login_limit()
    acl = Path(__file__).resolve().parent.parent / "tests" / "artifacts" / "acl-matrix.json"
    if acl.is_file():
        matrix = json.loads(acl.read_text())
        results["acl_matrix"] = {"allowed": matrix["allowed"], "denied": matrix["denied"], "source": "make test"}
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
