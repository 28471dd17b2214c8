"""What a service costs right now: resident memory, CPU share and (when torch uses a GPU) GPU memory."""

from __future__ import annotations

import os
import resource
import sys
import time


def rss_mib() -> float:
    """Resident memory of this process (VmRSS) in MiB; the peak from getrusage where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_mib() -> float | None:
    """GPU memory torch holds in this process, or None when torch is not loaded or has no GPU in use."""
    torch = sys.modules.get("torch")  # never import torch just to ask
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.memory_allocated() / (1024 * 1024)


class CpuMeter:
    """CPU time used between two calls, as a percentage of one core."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def percent(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        used = (cpu - self._cpu) / max(wall - self._wall, 1e-6) * 100
        self._cpu, self._wall = cpu, wall
        return max(used, 0.0)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
