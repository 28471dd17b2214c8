import json

import numpy as np
import pytest

from kiosk.config import Settings
from kiosk.emotion.classifier import EmotionClassifier
from kiosk.emotion.runtimes import RuntimeUnavailable, open_runtime
from kiosk.modelstore.manifest import ModelError, load_manifest
from tests.conftest import FER_DIR
from tests.modelkit import tiny_model_dir


def test_classifier_runs_a_model_built_from_its_manifest(tmp_path):
    model_dir = tiny_model_dir(tmp_path / "tiny")
    classifier = EmotionClassifier(model_dir, ["tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"])
    assert classifier.runtime.name == "onnxruntime-cpu"  # no GPU here: the fallback chain ends on the CPU
    prediction = classifier.classify(np.random.default_rng(1).integers(0, 255, (96, 96), dtype=np.uint8))
    assert sum(prediction.calibrated_probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert prediction.emotion in prediction.calibrated_probs
    assert classifier.model_name == "tiny-test@0.0.1"


def test_a_corrupted_weight_file_is_refused(tmp_path):
    model_dir = tiny_model_dir(tmp_path / "tiny")
    with (model_dir / "model.onnx").open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError, match="sha256"):
        load_manifest(model_dir)


def test_missing_model_says_what_is_missing(tmp_path):
    with pytest.raises(ModelError, match=r"manifest\.json is missing"):
        EmotionClassifier(tmp_path / "nowhere", ["onnxruntime-cpu"])
    model_dir = tiny_model_dir(tmp_path / "tiny")
    (model_dir / "model.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_manifest(model_dir)


def test_labels_in_another_order_are_refused(tmp_path):
    model_dir = tiny_model_dir(tmp_path / "tiny")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="order"):
        EmotionClassifier(model_dir, ["onnxruntime-cpu"])


def test_no_runtime_gives_every_reason(tmp_path):
    model_dir = tiny_model_dir(tmp_path / "tiny")
    with pytest.raises(RuntimeUnavailable) as excinfo:
        open_runtime(model_dir / "model.onnx", ["tensorrt", "nonsense"])
    assert "tensorrt" in str(excinfo.value) and "nonsense" in str(excinfo.value)


def test_the_shipped_default_model_is_complete_and_sees_a_smile():
    """The committed model verifies against its manifest and reads the sample photo's smile as happy."""
    import cv2

    from kiosk.camera import sources
    from kiosk.camera.detector import HaarFaceDetector, face_crop

    settings = Settings()
    classifier = EmotionClassifier(settings.emotion.model_dir, ["onnxruntime-cpu"])
    assert (settings.emotion.model_dir / "MODEL_CARD.md").is_file()
    grey = cv2.cvtColor(sources.sample_photo(), cv2.COLOR_BGR2GRAY)
    prediction = classifier.classify(face_crop(grey, HaarFaceDetector().detect(grey)[0]))
    assert prediction.emotion == "happy", prediction


@pytest.mark.skipif(not (FER_DIR / "fer2013_publictest.npz").exists(), reason="../shared FER2013 data not present")
def test_the_shipped_model_reaches_the_accuracy_its_card_states():
    from kiosk.emotion.evaluate import evaluate

    settings = Settings()
    manifest = load_manifest(settings.emotion.model_dir)
    report = evaluate(
        settings.emotion.model_dir, FER_DIR / "fer2013_publictest.npz", tta=False, runtimes=["onnxruntime-cpu"]
    )
    assert report["accuracy"] == pytest.approx(manifest.metrics["publictest_accuracy"], abs=0.002)
    assert report["accuracy"] > 0.60  # above the seed's ResNet18 (59.78%) and fer's mini-Xception (58.2%)
    assert f"{report['accuracy']:.2%}" in (settings.emotion.model_dir / "MODEL_CARD.md").read_text()


def test_serving_with_tta_averages_the_ten_views_as_the_eval_does(tmp_path):
    from kiosk.emotion.evaluate import predict

    model_dir = tiny_model_dir(tmp_path / "tiny")
    faces = np.random.default_rng(1).integers(0, 255, (3, 48, 48), dtype=np.uint8)
    served = EmotionClassifier(model_dir, ["onnxruntime-cpu"], tta=True)
    plain = EmotionClassifier(model_dir, ["onnxruntime-cpu"])
    np.testing.assert_allclose(served.logits(faces), predict(plain, faces, tta=True), atol=1e-5)
    assert not np.allclose(served.logits(faces), plain.logits(faces), atol=1e-4)


def test_the_shipped_model_cards_figures_are_the_ones_its_eval_json_holds():
    """Every figure of the card is generated from eval.json: the generator gives the card back unchanged, and
    the table's numbers, read independently of the generator, are eval.json's."""
    import re

    from kiosk.emotion.card import card_with_figures

    model_dir = Settings().emotion.model_dir
    card, regenerated = card_with_figures(model_dir)
    assert card == regenerated, "MODEL_CARD.md figures differ from eval.json: run python -m kiosk.emotion.card"
    evaluation = json.loads((model_dir / "eval.json").read_text())
    rows = re.findall(
        r"^\| (no|yes) \| ([\d.]+)% \| ([\d.]+)% \| ([\d.]+)% \| ([\d.]+) → ([\d.]+) \| ([\d.]+) ms \|$", card, re.M
    )
    assert [row[0] for row in rows] == ["no", "yes"]
    for row, report in zip(rows, (evaluation["plain"], evaluation["tta"]), strict=True):
        stated = [float(value) for value in row[1:]]
        measured = [
            report["accuracy"] * 100, report["macro_recall"] * 100, report["without_training_copies"]["accuracy"] * 100,
            report["ece_15_bins"]["uncalibrated"], report["ece_15_bins"]["calibrated"], report["ms_per_face"],
        ]  # fmt: skip
        assert stated == pytest.approx(measured, abs=0.006), (stated, measured)
    assert f"Calibration temperature: {load_manifest(model_dir).calibration_temperature}" in card
    assert "chosen on PublicTest" in card and "held-out part of Training" in card  # 1.1.0 says how it was made


def test_the_readme_states_the_shipped_models_figures_from_its_eval_json():
    from kiosk.config import PROJECT_ROOT
    from kiosk.emotion.card import readme_sentence

    evaluation = json.loads((Settings().emotion.model_dir / "eval.json").read_text())
    sentence = readme_sentence(evaluation)
    assert sentence in " ".join((PROJECT_ROOT / "README.md").read_text().split()), sentence
