"""Optional attribute backends behind one interface: deepface (ONNX) and ultralytics (YOLO), tested on tiny
models the tests build; the defaults when their weights are absent."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest

from kiosk.camera.attribute_backends import (
    AgeAndGenderBackend,
    BackendUnavailable,
    BridgeEdgeGlasses,
    DeepFaceBackend,
    YoloGlasses,
    age_group_masses,
    open_age_gender,
    open_glasses,
)
from kiosk.camera.attributes import make_attribute_estimator
from kiosk.camera.detector import Detection

FACE = Detection(40, 30, 120, 120, 1.0)


def frame_of(brightness: int) -> np.ndarray:
    return np.full((240, 200, 3), brightness, np.uint8)


def test_age_group_masses_sum_yearly_probabilities():
    probs = np.zeros(101)
    probs[[5, 15, 30]] = [0.5, 0.3, 0.2]
    assert age_group_masses(probs) == pytest.approx({"young child": 0.5, "teenager": 0.3, "young adult": 0.2})


def write_tiny_deepface_models(home: Path) -> Path:
    """Age and gender graphs with deepface's I/O: (n, 224, 224, 3) BGR in [0, 1] → 101 ages / [woman, man].

    Their answers follow the face's brightness (dark → an 8-year-old woman, bright → a 48-year-old man), so
    the test sees whether pixels really flow from the frame through deepface's preprocessing.
    """
    import torch

    class Age(torch.nn.Module):
        def forward(self, x):
            mean = x.mean(dim=(1, 2, 3))[:, None]
            years = torch.arange(101, dtype=torch.float32)[None]
            return torch.softmax(-((years - 80 * mean) ** 2) / 4.0, dim=1)

    class Gender(torch.nn.Module):
        def forward(self, x):
            woman = torch.sigmoid(-40 * (x.mean(dim=(1, 2, 3)) - 0.35))[:, None]
            return torch.cat([woman, 1 - woman], dim=1)

    weights = home / ".deepface" / "weights"
    weights.mkdir(parents=True)
    for module, name in ((Age(), "age_model_weights.onnx"), (Gender(), "gender_model_weights.onnx")):
        torch.onnx.export(
            module, (torch.rand(1, 224, 224, 3),), str(weights / name), input_names=["input"],
            dynamic_axes={"input": {0: "n"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    return weights


needs_deepface = pytest.mark.skipif(importlib.util.find_spec("deepface") is None, reason="deepface not installed")
needs_ultralytics = pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is None, reason="ultralytics not installed"
)


@needs_deepface
def test_deepface_backend_runs_installed_weights_through_deepfaces_models(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    write_tiny_deepface_models(tmp_path)
    backend = DeepFaceBackend()
    dark, bright = backend.estimate(frame_of(25), FACE), backend.estimate(frame_of(150), FACE)
    assert (dark.age_group, dark.gender) == ("young child", "female")
    assert (bright.age_group, bright.gender) == ("young adult", "male")
    assert dark.age_confidence > 0.9 and dark.gender_confidence > 0.9
    estimator = make_attribute_estimator("auto", "none")  # auto prefers deepface once its weights exist
    assert estimator.age_gender.name == "deepface"
    attributes = estimator.estimate(frame_of(25), FACE).attributes
    assert attributes.age_group == "young child" and attributes.gender == "female"


@needs_deepface
def test_deepface_without_weights_never_downloads_and_auto_falls_back(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="weights not installed"):
        DeepFaceBackend()
    assert not (tmp_path / ".deepface" / "weights" / "age_model_weights.onnx").exists()
    with caplog.at_level(logging.INFO):
        backend = open_age_gender("auto")
    assert isinstance(backend, AgeAndGenderBackend)
    assert "deepface unavailable" in caplog.text
    assert open_age_gender("deepface") is None  # asked for, not installed: left out, never guessed


def tiny_yolo(path: Path, names: dict[int, str]) -> Path:
    """A YOLOv8n-architecture detector built from ultralytics' packaged config (random weights)."""
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    network = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
    network.names = names
    model = YOLO("yolov8n.yaml", task="detect")
    model.model = network
    model.save(str(path))
    return path


@needs_ultralytics
def test_yolo_glasses_backend_loads_local_weights_and_reports_a_probability(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
    weights = tiny_yolo(tmp_path / "glasses.pt", {0: "person", 1: "eyeglasses"})
    backend = YoloGlasses(weights, tmp_path / "yolo")
    assert backend.glasses_classes == [1]
    probability = backend.probability(frame_of(120), FACE)
    assert 0.0 <= probability <= 1.0
    estimator = make_attribute_estimator("none", "auto", weights, tmp_path / "yolo")
    assert estimator.glasses.name == "ultralytics"
    confidences = estimator.estimate(frame_of(120), FACE).confidences
    assert confidences["glasses"] == pytest.approx(probability, abs=0.01)


@needs_ultralytics
def test_yolo_without_a_glasses_class_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
    weights = tiny_yolo(tmp_path / "people.pt", {0: "person"})
    with pytest.raises(BackendUnavailable, match="no glasses class"):
        YoloGlasses(weights, tmp_path / "yolo")


def test_glasses_auto_without_yolo_weights_uses_the_bridge_heuristic():
    assert isinstance(open_glasses("auto", None), BridgeEdgeGlasses)
    assert open_glasses("none", None) is None
    with pytest.raises(ValueError, match="unknown glasses backend"):
        open_glasses("x-ray", None)
