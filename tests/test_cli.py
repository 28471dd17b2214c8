"""Every level of the `kiosk` command answers --help with exit status 0, and `kiosk --version` names the version.

Levels that hand their arguments to another module's parser (emotion, models, safety, story check/tune,
illustrate) used to exit 2 on --help; an installer or a carer reading the help must not be told it failed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from kiosk.cli import main

LEVELS = [
    [],
    ["run"],
    ["serve"],
    ["emotion"],
    *(["emotion", action] for action in ("train", "export", "eval", "hygiene", "card")),
    ["story"],
    *(["story", action] for action in ("generate", "check", "tune", "eval")),
    ["illustrate"],
    ["illustrate", "eval"],
    ["models"],
    *(["models", action] for action in ("pull", "keygen", "bundle", "install", "check", "deploy")),
    ["staff"],
    *(["staff", action] for action in ("add-user", "passwd", "remove-user")),
    ["safety"],
    ["safety", "train"],
    ["config-schema"],
    ["appliance"],
]


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: " ".join(level) or "kiosk")
def test_every_level_answers_help(level: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main([*level, "--help"])
    except SystemExit as exit_:
        status = exit_.code
    out = capsys.readouterr().out
    assert status in (0, None), f"kiosk {' '.join(level)} --help exited {status}"
    assert "usage:" in out.lower()


def test_version_from_the_installed_command() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [sys.executable, "-m", "kiosk", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kiosk {version('emotionai-kiosk')}"


def test_an_action_is_still_required() -> None:
    assert main(["models"]) == 2
