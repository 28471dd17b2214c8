"""Settings from the environment (pydantic-settings) and broker passwords from systemd's credentials directory.

What broke services before: a hand-written ``KIOSK_*`` parser turned any such variable into a setting, so a
stray ``KIOSK_ID`` (set by an unrelated tool, or a typo) failed validation and stopped every service; and list
settings could not be set at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kiosk.broker import ensure_passwords, free_port
from kiosk.config import load_settings


def test_nested_list_and_none_settings_from_the_environment(tmp_path: Path) -> None:
    toml = tmp_path / "kiosk.toml"
    toml.write_text('kiosk_id = "playroom-1"\n[web]\nport = 8090\ngrace_s = 5\n')
    settings = load_settings(
        toml,
        environ={
            "KIOSK_WEB__PORT": "8091",  # the environment wins over the file, field by field
            "KIOSK_EMOTION__RUNTIMES": '["onnxruntime-cpu"]',
            "KIOSK_STORY__ADAPTER_PATH": "none",
            "KIOSK_RUN_DIR": str(tmp_path / "run"),
        },
    )
    assert settings.kiosk_id == "playroom-1"
    assert (settings.web.port, settings.web.grace_s) == (8091, 5)
    assert settings.emotion.runtimes == ["onnxruntime-cpu"]
    assert settings.story.adapter_path is None
    assert settings.run_dir == tmp_path / "run"


def test_a_misspelt_setting_inside_a_section_is_still_refused() -> None:
    with pytest.raises(ValueError, match="prot"):
        load_settings(environ={"KIOSK_WEB__PROT": "8091"})


def test_systemd_credentials_win_over_the_secrets_directory(tmp_path: Path, monkeypatch) -> None:
    credentials, secrets_dir = tmp_path / "credentials", tmp_path / "secrets"
    credentials.mkdir()
    (credentials / "broker-web").write_text("from-systemd\n")
    ensure_passwords(secrets_dir, ("web", "story"))
    settings = load_settings(environ={"KIOSK_BROKER__SECRETS_DIR": str(secrets_dir)})
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert settings.broker_password("web") == "from-systemd"
    assert settings.broker_password("story") == (secrets_dir / "broker-story").read_text()


@pytest.mark.integration
def test_a_stray_kiosk_variable_does_not_stop_a_service(settings, tmp_path: Path) -> None:
    """The attack (or accident): ``KIOSK_ID=...`` in the service's environment. The service still starts."""
    env = os.environ | {
        "KIOSK_ID": "not-a-setting",
        "KIOSK_SOMETHING_ELSE": "1",
        "KIOSK_KIOSK_ID": settings.kiosk_id,
        "KIOSK_RUN_DIR": str(tmp_path / "web-run"),
        "KIOSK_BROKER__PORT": str(settings.broker.port),
        "KIOSK_BROKER__SECRETS_DIR": str(settings.broker.secrets_dir),
        "KIOSK_WEB__PORT": str(port := free_port()),
    }
    process = subprocess.Popen([sys.executable, "-m", "kiosk", "serve", "web"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                    return
            except OSError:
                time.sleep(0.3)
        said = process.stderr.read().decode()[-2000:] if process.poll() is not None else "still starting"
        pytest.fail(f"the web service did not start: {said}")
    finally:
        process.terminate()
        process.wait(15)
