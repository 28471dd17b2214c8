"""Signed model bundles: install, switch, reload, and every way a bad update must leave the old model serving."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from bench.deploykit import SSHD, always_sad_model, emotion_model_copy, loopback_sshd
from kiosk.config import ModelsConfig, Settings
from kiosk.emotion.service import EmotionService
from kiosk.events import DeployResult, StatusPayload, Topics
from kiosk.modelstore.bundle import build_bundle, generate_key, load_private_key
from kiosk.modelstore.deploy import deploy
from kiosk.modelstore.install import install_bundle, report
from kiosk.modelstore.registry import ModelStore, active_model_dir
from tests.conftest import Recorder, start_bus, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    private, public = generate_key(tmp_path / "maintainer", "maintainer")
    trusted = tmp_path / "trusted-keys"
    trusted.mkdir()
    shutil.copy(public, trusted / "maintainer.pub")
    stranger, _ = generate_key(tmp_path / "stranger", "stranger")
    return {"private": private, "trusted": trusted, "stranger": stranger}


@pytest.fixture
def kiosk(settings: Settings, tmp_path: Path, keys) -> Settings:
    models = ModelsConfig(installed_dir=tmp_path / "kiosk-models", trusted_keys_dir=keys["trusted"])
    return settings.model_copy(update={"models": models})


def bundle_of(model_dir: Path, key: Path, out: Path) -> Path:
    return build_bundle(model_dir, load_private_key(key), out).path


def rewrite_member(bundle: Path, name: str, change) -> None:
    """Rewrite one member of a bundle after signing, as an attacker or a broken copy would."""
    with tarfile.open(bundle) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(bundle, "w") as tar:
        for member, data in members:
            if member.name == name:
                changed = change(data)
                assert changed != data, f"the test did not change {name}"
                data = changed
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def test_a_signed_bundle_installs_beside_the_shipped_model_and_is_reported(kiosk, keys, tmp_path, connect):
    topics = Topics(kiosk.kiosk_id)
    watcher = Recorder()
    staff = connect("staff")
    staff.subscribe(topics.deploy, watcher)
    start_bus(staff)
    emotion = connect("emotion")
    commands = Recorder()
    emotion.subscribe(topics.command("reload-models"), commands)
    start_bus(emotion)

    bundle = bundle_of(emotion_model_copy(tmp_path / "v2", "1.2.1"), keys["private"], tmp_path / "v2.tar")
    outcome = install_bundle(kiosk, bundle)

    assert outcome.ok and outcome.action == "installed", outcome
    assert "known smiling face → happy" in outcome.reason
    current = ModelStore(kiosk.installed_models_dir).current("emotion")
    assert current == (kiosk.installed_models_dir / "emotion" / "kiosk-compact-cnn" / "1.2.1").resolve()
    assert active_model_dir(kiosk, "emotion") == current
    assert not any((kiosk.installed_models_dir / ".staging").iterdir())
    assert report(kiosk, outcome)
    assert wait_for(lambda: watcher.payloads(topics.deploy))
    assert DeployResult.model_validate_json(watcher.payloads(topics.deploy)[-1]).version == "1.2.1"
    assert wait_for(lambda: commands.payloads()), "services were not asked to reload"


def test_a_running_emotion_service_switches_to_the_deployed_model(kiosk, keys, tmp_path, connect):
    topics = Topics(kiosk.kiosk_id)
    service = EmotionService(kiosk)
    service.start()
    threading.Thread(target=service.loop, daemon=True).start()
    statuses = Recorder()
    monitor = connect("monitor")
    monitor.subscribe(topics.status("emotion"), statuses)
    start_bus(monitor)

    def model_label() -> str | None:
        payloads = statuses.payloads()
        return StatusPayload.model_validate_json(payloads[-1]).detail.get("model") if payloads else None

    try:
        shipped = json.loads((kiosk.emotion.model_dir / "manifest.json").read_text())
        assert wait_for(lambda: model_label() == f"kiosk-compact-cnn@{shipped['version']}")
        bundle = bundle_of(emotion_model_copy(tmp_path / "v2", "1.2.1"), keys["private"], tmp_path / "v2.tar")
        outcome = install_bundle(kiosk, bundle)
        assert outcome.ok
        report(kiosk, outcome)
        assert wait_for(lambda: model_label() == "kiosk-compact-cnn@1.2.1", timeout=15)
    finally:
        service.stop()


def test_a_corrupted_file_is_refused_and_nothing_changes(kiosk, keys, tmp_path):
    first = bundle_of(emotion_model_copy(tmp_path / "v2", "1.2.1"), keys["private"], tmp_path / "v2.tar")
    assert install_bundle(kiosk, first).ok
    bundle = bundle_of(emotion_model_copy(tmp_path / "v3", "1.2.2"), keys["private"], tmp_path / "v3.tar")
    rewrite_member(bundle, "model.onnx", lambda data: data[:-100] + bytes(100))

    outcome = install_bundle(kiosk, bundle)

    assert outcome.action == "refused" and "sha256" in outcome.reason, outcome
    store = ModelStore(kiosk.installed_models_dir)
    assert store.current("emotion").name == "1.2.1"
    assert not (kiosk.installed_models_dir / "emotion" / "kiosk-compact-cnn" / "1.2.2").exists()


@pytest.mark.parametrize("attack", ["untrusted key", "manifest edited after signing", "unsigned"])
def test_a_bad_signature_is_refused_and_nothing_changes(kiosk, keys, tmp_path, attack):
    model = emotion_model_copy(tmp_path / "v2", "1.2.1")
    key = keys["stranger"] if attack == "untrusted key" else keys["private"]
    bundle = bundle_of(model, key, tmp_path / "v2.tar")
    if attack == "manifest edited after signing":
        rewrite_member(bundle, "manifest.json", lambda data: data.replace(b'"1.2.1"', b'"6.6.6"', 1))
    if attack == "unsigned":
        rewrite_member(bundle, "manifest.sig", lambda data: b"")

    outcome = install_bundle(kiosk, bundle)

    assert outcome.action == "refused", outcome
    expected = {"untrusted key": "does not trust", "manifest edited after signing": "bad signature"}
    assert expected.get(attack, "malformed") in outcome.reason
    assert ModelStore(kiosk.installed_models_dir).current("emotion") is None
    assert active_model_dir(kiosk, "emotion") == kiosk.emotion.model_dir  # the shipped model still serves


def add_member(bundle: Path, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    """Append a member to a signed bundle, as an attacker who holds a bundle but not the key would."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    with tarfile.open(bundle, "a") as tar:
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


SMUGGLED = {
    "extra file": ("extra.py", b"import os; os.system('id')\n", tarfile.REGTYPE, "", "does not list"),
    "extra file in a folder": ("hooks/run.sh", b"#!/bin/sh\n", tarfile.REGTYPE, "", "does not list"),
    "symlink": ("alias.onnx", b"", tarfile.SYMTYPE, "model.onnx", "is a link"),
    "symlink out": ("passwd", b"", tarfile.SYMTYPE, "/etc/passwd", "is a link"),
    "hard link": ("hard.onnx", b"", tarfile.LNKTYPE, "model.onnx", "is a link"),
    "path traversal": ("../../escaped.txt", b"owned\n", tarfile.REGTYPE, "", "not a plain relative path"),
    "absolute path": ("/tmp/kiosk-absolute.txt", b"owned\n", tarfile.REGTYPE, "", "not a plain relative path"),
    "dot path": ("./model.onnx", b"x", tarfile.REGTYPE, "", "not a plain relative path"),
    "directory": ("empty", b"", tarfile.DIRTYPE, "", "is a directory"),
    "device": ("null", b"", tarfile.CHRTYPE, "", "special file"),
}


@pytest.mark.parametrize("attack", SMUGGLED)
def test_a_signed_bundle_holding_anything_its_manifest_does_not_list_is_refused(kiosk, keys, tmp_path, attack):
    name, data, kind, link, reason = SMUGGLED[attack]
    bundle = bundle_of(emotion_model_copy(tmp_path / "v2", "1.2.1"), keys["private"], tmp_path / "v2.tar")
    assert install_bundle(kiosk, bundle_of(tmp_path / "v2", keys["private"], tmp_path / "ok.tar")).ok  # control
    ModelStore(kiosk.installed_models_dir).restore("emotion", None)
    shutil.rmtree(kiosk.installed_models_dir / "emotion" / "kiosk-compact-cnn")
    add_member(bundle, name, data, kind, link)

    outcome = install_bundle(kiosk, bundle)

    assert outcome.action == "refused" and reason in outcome.reason, outcome
    assert ModelStore(kiosk.installed_models_dir).current("emotion") is None
    assert active_model_dir(kiosk, "emotion") == kiosk.emotion.model_dir  # the shipped model still serves
    assert not (kiosk.installed_models_dir / "emotion" / "kiosk-compact-cnn" / "1.2.1").exists()
    assert not any(p.name in ("escaped.txt", "kiosk-absolute.txt") for p in tmp_path.rglob("*"))
    assert not Path("/tmp/kiosk-absolute.txt").exists()


def test_the_bundle_builder_packs_only_what_the_manifest_lists(keys, tmp_path):
    model = emotion_model_copy(tmp_path / "v2", "1.2.1")
    (model / "notes.txt").write_text("not listed")
    with tarfile.open(bundle_of(model, keys["private"], tmp_path / "v2.tar")) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "manifest.sig", "model.onnx"]


def test_a_failing_health_check_rolls_back_to_the_previous_model(kiosk, keys, tmp_path):
    good = bundle_of(emotion_model_copy(tmp_path / "v2", "1.2.1"), keys["private"], tmp_path / "v2.tar")
    assert install_bundle(kiosk, good).ok
    bad = bundle_of(always_sad_model(tmp_path / "sad"), keys["private"], tmp_path / "sad.tar")

    outcome = install_bundle(kiosk, bad)

    assert outcome.action == "rolled back" and not outcome.ok, outcome
    assert "classified sad" in outcome.reason
    assert outcome.previous == "kiosk-compact-cnn 1.2.1"
    store = ModelStore(kiosk.installed_models_dir)
    assert store.current("emotion").name == "1.2.1"
    assert not (kiosk.installed_models_dir / "emotion" / "always-sad").joinpath("9.9.9-sad").exists()


@pytest.mark.skipif(not Path(SSHD).exists() or shutil.which("rsync") is None, reason="sshd or rsync not installed")
def test_deploy_over_ssh_to_a_kiosk_and_a_local_kiosk_directory(kiosk, keys, tmp_path):
    remote_config = tmp_path / "remote-kiosk.json"
    remote_config.write_text(kiosk.model_dump_json())
    local_kiosk = tmp_path / "local-kiosk"
    local_kiosk.mkdir()
    local_settings = kiosk.model_copy(
        update={"models": kiosk.models.model_copy(update={"installed_dir": local_kiosk / "models"})}
    )
    (local_kiosk / "kiosk.toml").write_text(  # a technician's TOML file, as on a real kiosk
        f'kiosk_id = "{kiosk.kiosk_id}"\nrun_dir = "{local_kiosk / "run"}"\n'
        f'[broker]\nport = {kiosk.broker.port}\nsecrets_dir = "{kiosk.broker.secrets_dir}"\n'
        f'[models]\ninstalled_dir = "{local_settings.models.installed_dir}"\n'
        f'trusted_keys_dir = "{keys["trusted"]}"\n'
    )
    model = emotion_model_copy(tmp_path / "v2", "1.2.1")
    with loopback_sshd(tmp_path / "sshd") as sshd:
        result = subprocess.run(
            [
                sys.executable, "-m", "kiosk", "models", "deploy", "--model", str(model), "--key", str(keys["private"]),
                "--trusted-keys", str(keys["trusted"]), "--ssh", sshd.ssh,
                "--remote-dir", str(tmp_path / "incoming"),
                "--remote-kiosk", f"env KIOSK_CONFIG={remote_config} {sys.executable} -m kiosk",
                f"{sshd.user}@127.0.0.1", str(local_kiosk),
            ],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] and len(summary["targets"]) == 2, summary
    assert ModelStore(kiosk.installed_models_dir).current("emotion").name == "1.2.1"
    assert ModelStore(local_settings.installed_models_dir).current("emotion").name == "1.2.1"


def test_deploy_reports_an_unreachable_kiosk(keys, tmp_path):
    model = emotion_model_copy(tmp_path / "v2", "1.2.1")
    report_ = deploy(model, keys["private"], ["nobody@127.0.0.1"], ssh="ssh -p 1 -o BatchMode=yes -o ConnectTimeout=2")
    assert not report_["ok"]
    assert report_["targets"]["nobody@127.0.0.1"]["action"] == "not delivered"


PULLED_STORY_MODEL = Path(__file__).resolve().parent.parent / "models" / "story" / "smollm2-135m-instruct"


@pytest.mark.skipif(not (PULLED_STORY_MODEL / "manifest.json").is_file(), reason="kiosk models pull smollm2 not run")
def test_a_story_model_bundle_installs_after_writing_in_its_health_check(kiosk, keys, tmp_path):
    model = tmp_path / "story-model"
    shutil.copytree(PULLED_STORY_MODEL, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["version"] = "q4_1-test"
    (model / "manifest.json").write_text(json.dumps(manifest))
    outcome = install_bundle(kiosk, bundle_of(model, keys["private"], tmp_path / "story.tar"))
    assert outcome.ok and outcome.task == "story", outcome
    assert "wrote: Once upon a time" in outcome.reason
    assert active_model_dir(kiosk, "story").name == "q4_1-test"


def test_an_older_signed_version_is_refused_unless_forced(kiosk, keys, tmp_path):
    """The attack: replay an old, validly signed bundle to bring back a model that was replaced."""
    old = bundle_of(emotion_model_copy(tmp_path / "old", "1.2.1"), keys["private"], tmp_path / "old.tar")
    new = bundle_of(emotion_model_copy(tmp_path / "new", "1.3.0"), keys["private"], tmp_path / "new.tar")
    assert install_bundle(kiosk, new).ok
    store = ModelStore(kiosk.installed_models_dir)

    replayed = install_bundle(kiosk, old)

    assert replayed.action == "refused" and "older than the serving 1.3.0" in replayed.reason, replayed
    assert store.current("emotion").name == "1.3.0"
    assert not (kiosk.installed_models_dir / "emotion" / "kiosk-compact-cnn" / "1.2.1").exists()
    # older than the shipped model (nothing installed yet) counts too
    shipped = json.loads((kiosk.emotion.model_dir / "manifest.json").read_text())["version"]
    fresh = kiosk.model_copy(update={"models": kiosk.models.model_copy(update={"installed_dir": tmp_path / "fresh"})})
    below_shipped = bundle_of(emotion_model_copy(tmp_path / "below", "0.9.0"), keys["private"], tmp_path / "b.tar")
    assert install_bundle(fresh, below_shipped).action == "refused", f"0.9.0 installed over shipped {shipped}"
    # the maintainer going back on purpose, through the command a deploy runs on the kiosk
    result = subprocess.run(
        [sys.executable, "-m", "kiosk", "models", "install", "--force", "--no-report", str(old)],
        env={**os.environ, "KIOSK_CONFIG": str(_settings_file(kiosk, tmp_path))},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["action"] == "installed"
    assert store.current("emotion").name == "1.2.1"


def _settings_file(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.json"
    path.write_text(settings.model_dump_json())
    return path
