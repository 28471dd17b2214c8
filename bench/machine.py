"""The machine a benchmark ran on, read from the machine itself, so no figure carries a guessed description."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    named = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(named, None) or platform.processor() or platform.machine()


def describe(**extra: object) -> dict:
    """CPU cores this process may use, their model, the platform, and what the caller adds (browser, GPU)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found = {"cpus": cpus, "cpu_model": cpu_model(), "platform": platform.platform()}
    return found | {"python": platform.python_version()} | extra
