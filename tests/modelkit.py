"""Build small real emotion models for tests: an untrained network exported to ONNX with a manifest."""

from __future__ import annotations

from pathlib import Path

from kiosk.modelstore.manifest import write_manifest


def tiny_model_dir(path: Path, temperature: float = 1.0) -> Path:
    from kiosk.emotion import architectures
    from kiosk.emotion.export import ONNX_NAME, export_onnx, onnx_emotion_manifest
    from kiosk.emotion.train import NormalisedNet

    path.mkdir(parents=True, exist_ok=True)
    export_onnx(NormalisedNet(architectures.build("compact-small")), path / ONNX_NAME)
    write_manifest(
        path,
        onnx_emotion_manifest(
            path, "tiny-test", "0.0.1", "untrained, built by the test", "MIT", calibration_temperature=temperature
        ),
    )
    return path
