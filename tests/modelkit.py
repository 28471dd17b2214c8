"""Build small real emotion models for tests: an untrained network exported to ONNX with a manifest."""

from __future__ import annotations

from pathlib import Path

from kiosk.emotion.labels import EMOTIONS
from kiosk.models import Manifest, file_entry, write_manifest


def tiny_model_dir(path: Path, temperature: float = 1.0) -> Path:
    from kiosk.emotion import architectures
    from kiosk.emotion.export import ONNX_NAME, export_onnx
    from kiosk.emotion.train import NormalisedNet

    path.mkdir(parents=True, exist_ok=True)
    export_onnx(NormalisedNet(architectures.build("compact-small")), path / ONNX_NAME)
    write_manifest(
        path,
        Manifest(
            name="tiny-test",
            version="0.0.1",
            task="emotion",
            backend="onnx",
            files=[file_entry(path, ONNX_NAME)],
            source="untrained, built by the test",
            licence="MIT",
            labels=list(EMOTIONS),
            calibration_temperature=temperature,
        ),
    )
    return path
