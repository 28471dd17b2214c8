"""Inference runtimes for the emotion network, tried in order: TensorRT → ONNX Runtime CUDA → CPU.

Each runtime is a small plugin registered by name; one whose library or device is missing says why and
the next one is tried. The name of the runtime that answered travels in every ``emotion`` event.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)


class Runtime(Protocol):
    name: str

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 1, 48, 48) float32 in [0, 1] → (N, 7) logits."""
        ...


class RuntimeUnavailable(RuntimeError):
    """This runtime cannot run here (library, device or engine missing)."""


class OnnxRuntime:
    def __init__(self, onnx_path: Path, providers: list[str], name: str, threads: int = 1) -> None:
        import onnxruntime as ort

        missing = [p for p in providers if p not in ort.get_available_providers()]
        if missing:
            raise RuntimeUnavailable(f"onnxruntime lacks {missing}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.name = name

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: pixels.astype(np.float32, copy=False)})[0]


def _tensorrt(onnx_path: Path, threads: int, cache_dir: Path | None) -> Runtime:
    if importlib.util.find_spec("tensorrt") is None:
        raise RuntimeUnavailable("the tensorrt package is not installed")
    from kiosk.emotion.tensorrt_engine import TensorRTRuntime, TensorRTUnavailable

    try:
        return TensorRTRuntime(onnx_path, cache_dir or Path(onnx_path).parent / "engines")
    except TensorRTUnavailable as exc:
        raise RuntimeUnavailable(str(exc)) from None


RUNTIMES: dict[str, Callable[[Path, int, Path | None], Runtime]] = {
    "tensorrt": _tensorrt,
    "onnxruntime-cuda": lambda path, threads, cache: OnnxRuntime(
        path, ["CUDAExecutionProvider", "CPUExecutionProvider"], "onnxruntime-cuda", threads
    ),
    "onnxruntime-cpu": lambda path, threads, cache: OnnxRuntime(
        path, ["CPUExecutionProvider"], "onnxruntime-cpu", threads
    ),
}


def open_runtime(
    onnx_path: Path, preference: list[str], threads: int = 1, engine_cache_dir: Path | None = None
) -> Runtime:
    """The first runtime in ``preference`` that works here (TensorRT engines cached in ``engine_cache_dir``)."""
    reasons = []
    for name in preference:
        if name not in RUNTIMES:
            reasons.append(f"{name}: unknown runtime")
            continue
        try:
            runtime = RUNTIMES[name](onnx_path, threads, engine_cache_dir)
        except RuntimeUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            logger.info("runtime %s unavailable: %s", name, exc)
            continue
        logger.info("emotion runtime: %s", runtime.name)
        return runtime
    raise RuntimeUnavailable("no emotion runtime works here: " + "; ".join(reasons))
