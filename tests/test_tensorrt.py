"""The TensorRT path: cache naming everywhere; engine build, parity and cache reuse where TensorRT and a GPU exist."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.emotion.tensorrt_engine import engine_cache_name, tensorrt_ready
from tests.modelkit import tiny_model_dir

SHA = "ab" * 32


def test_an_engine_is_cached_per_tensorrt_version_gpu_and_model():
    name = engine_cache_name("10.9.0.34", "NVIDIA H100 80GB HBM3", (9, 0), SHA)
    assert name == "trt10.9.0.34-nvidia-h100-80gb-hbm3-sm90-abababababababab.engine"
    others = {
        engine_cache_name("10.10.0.1", "NVIDIA H100 80GB HBM3", (9, 0), SHA),
        engine_cache_name("10.9.0.34", "NVIDIA L4", (8, 9), SHA),
        engine_cache_name("10.9.0.34", "NVIDIA H100 80GB HBM3", (9, 0), "cd" * 32),
    }
    assert name not in others and len(others) == 3


needs_tensorrt = pytest.mark.skipif(
    tensorrt_ready() is not None, reason=f"TensorRT path not testable here: {tensorrt_ready()}"
)


@needs_tensorrt
def test_the_engine_matches_onnx_runtime_and_is_built_once(tmp_path):
    from kiosk.emotion.runtimes import open_runtime

    model_dir = tiny_model_dir(tmp_path / "tiny")
    cache = tmp_path / "engines"
    pixels = np.random.default_rng(0).random((12, 1, 48, 48), dtype=np.float32)
    reference = open_runtime(model_dir / "model.onnx", ["onnxruntime-cpu"]).logits(pixels)
    engine_runtime = open_runtime(model_dir / "model.onnx", ["tensorrt"], engine_cache_dir=cache)
    assert engine_runtime.name == "tensorrt"
    np.testing.assert_allclose(engine_runtime.logits(pixels), reference, atol=5e-2)  # FP16
    (engine,) = cache.glob("*.engine")
    built_at = engine.stat().st_mtime_ns
    open_runtime(model_dir / "model.onnx", ["tensorrt"], engine_cache_dir=cache)
    assert engine.stat().st_mtime_ns == built_at, "the cached engine was rebuilt"


@needs_tensorrt
def test_the_emotion_service_reports_tensorrt(tmp_path):
    from kiosk.emotion.classifier import EmotionClassifier

    classifier = EmotionClassifier(
        tiny_model_dir(tmp_path / "tiny"), ["tensorrt", "onnxruntime-cpu"], engine_cache_dir=tmp_path / "e"
    )
    assert classifier.runtime.name == "tensorrt"
