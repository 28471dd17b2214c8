"""TensorRT for the emotion network: an FP16 engine built from the ONNX model, cached, and run through torch.

An engine only runs on the TensorRT version and GPU it was built for, so the cache name holds the TensorRT
version, the GPU's name and compute capability, and the ONNX file's sha256: a new model, driver stack or
card builds a new engine instead of loading a wrong one. Building takes seconds to minutes, once; the cache
lives in the run directory (the model directory may be read-only).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import time
from pathlib import Path

import numpy as np

from kiosk.modelstore.manifest import sha256_of

logger = logging.getLogger(__name__)

MAX_BATCH = 16  # ten-crop TTA needs 10
WORKSPACE_BYTES = 1 << 28


class TensorRTUnavailable(RuntimeError):
    """No tensorrt package, no CUDA device, or the engine cannot be built."""


def engine_cache_name(trt_version: str, gpu_name: str, compute_capability: tuple[int, int], onnx_sha256: str) -> str:
    """``trt<version>-<gpu>-sm<cc>-<sha16>.engine``: one engine per TensorRT version, GPU and model."""
    gpu = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-")
    major, minor = compute_capability
    return f"trt{trt_version}-{gpu}-sm{major}{minor}-{onnx_sha256[:16]}.engine"


def tensorrt_ready() -> str | None:
    """None when TensorRT can run here, else why not."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the tensorrt package is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


def build_engine(onnx_path: Path, engine_path: Path, fp16: bool = True, max_batch: int = MAX_BATCH) -> Path:
    """Parse the ONNX model and write a serialized engine with a 1..max_batch profile (atomically)."""
    import tensorrt as trt

    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTUnavailable(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    pixels = network.get_input(0)
    _, channels, height, width = pixels.shape
    profile = builder.create_optimization_profile()
    profile.set_shape(
        pixels.name, (1, channels, height, width), (1, channels, height, width), (max_batch, channels, height, width)
    )
    config.add_optimization_profile(profile)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTUnavailable("TensorRT failed to build the engine (see its log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = engine_path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_bytes(bytes(serialized))
    os.replace(temporary, engine_path)
    logger.info("built TensorRT engine %s in %.1f s", engine_path.name, time.perf_counter() - started)
    return engine_path


def cached_engine(onnx_path: Path, cache_dir: Path, fp16: bool = True) -> Path:
    """The engine for this ONNX file on this TensorRT and GPU, built on first use."""
    import tensorrt as trt
    import torch

    name = engine_cache_name(
        trt.__version__, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0), sha256_of(onnx_path)
    )
    path = Path(cache_dir) / name
    if path.is_file():
        logger.info("TensorRT engine from cache: %s", path.name)
        return path
    return build_engine(onnx_path, path, fp16=fp16)


class TensorRTRuntime:
    """Runs a cached engine; input and output stay torch CUDA tensors (no extra CUDA bindings needed)."""

    name = "tensorrt"

    def __init__(self, onnx_path: Path, cache_dir: Path, fp16: bool = True) -> None:
        if reason := tensorrt_ready():
            raise TensorRTUnavailable(reason)
        import tensorrt as trt
        import torch

        self.torch = torch
        engine_path = cached_engine(Path(onnx_path), cache_dir, fp16)
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise TensorRTUnavailable(f"{engine_path.name} does not deserialize on this TensorRT")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        modes = {n: self.engine.get_tensor_mode(n) for n in names}
        self.input_name = next(n for n in names if modes[n] == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if modes[n] == trt.TensorIOMode.OUTPUT)
        self.stream = torch.cuda.Stream()
        self.engine_file = engine_path.name

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        torch = self.torch
        logits = []
        for start in range(0, len(pixels), MAX_BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(pixels[start : start + MAX_BATCH], np.float32)).cuda()
            self.context.set_input_shape(self.input_name, tuple(batch.shape))
            out_shape = tuple(self.context.get_tensor_shape(self.output_name))
            output = torch.empty(out_shape, dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(self.input_name, batch.data_ptr())
            self.context.set_tensor_address(self.output_name, output.data_ptr())
            with torch.cuda.stream(self.stream):
                if not self.context.execute_async_v3(self.stream.cuda_stream):
                    raise RuntimeError("TensorRT inference failed")
            self.stream.synchronize()
            logits.append(output.cpu().numpy())
        return np.concatenate(logits)
