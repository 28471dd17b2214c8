"""The training recipe and export on a tiny synthetic data set the test makes (no FER2013 needed)."""

import json

import numpy as np
import pytest
import torch

from kiosk.emotion import metrics
from kiosk.emotion.data import load_npz
from kiosk.modelstore.manifest import load_manifest


def synthetic_faces(path, n=96, seed=0):
    """Faces whose class is written in their brightness: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    images = (labels[:, None, None] * 30 + rng.integers(0, 20, (n, 48, 48))).astype(np.uint8)
    np.savez(path, images=images, labels=labels)
    return path


def test_npz_loader_checks_its_input(tmp_path):
    faces = load_npz(synthetic_faces(tmp_path / "ok.npz"))
    assert len(faces) == 96 and faces.class_counts().tolist() == [14] * 5 + [13] * 2
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((2, 48, 48), np.uint8))
    with pytest.raises(ValueError, match="lacks"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "shape.npz", images=np.zeros((2, 32, 32), np.uint8), labels=np.zeros(2))
    with pytest.raises(ValueError, match="48"):
        load_npz(tmp_path / "shape.npz")


def test_metrics_and_temperature():
    labels = np.array([0, 1, 2, 3])
    probs = np.eye(7)[[0, 1, 2, 4]] * 0.9 + 0.1 / 7
    summary = metrics.summarise(labels, probs)
    assert summary["accuracy"] == 0.75
    assert summary["per_class_recall"]["happy"] == 0.0
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 7)) * 4
    true_probs = metrics.softmax(logits, 3.0)  # the logits are three times too confident
    noisy_labels = np.array([rng.choice(7, p=p) for p in true_probs])
    temperature = metrics.fit_temperature(logits, noisy_labels)
    assert 2.5 < temperature < 3.5
    before = metrics.expected_calibration_error(metrics.softmax(logits), noisy_labels)
    after = metrics.expected_calibration_error(metrics.softmax(logits, temperature), noisy_labels)
    assert after < before


def test_the_holdout_is_stratified_deterministic_and_apart_from_training(tmp_path):
    from kiosk.emotion.data import holdout

    faces = load_npz(synthetic_faces(tmp_path / "faces.npz", n=700))
    rest, held = holdout(faces, 0.1)
    again_rest, again_held = holdout(faces, 0.1)
    assert (held.images == again_held.images).all() and (rest.labels == again_rest.labels).all()
    assert held.class_counts().tolist() == [10] * 7 and len(rest) == 630  # 10% of every class
    as_rows = {image.tobytes() for image in held.images}
    assert not as_rows & {image.tobytes() for image in rest.images}  # no held-out face is trained on
    assert {image.tobytes() for image in holdout(faces, 0.1, seed=1)[1].images} != as_rows
    with pytest.raises(ValueError):
        holdout(faces, 0.0)


@pytest.mark.slow
def test_train_resume_export_round_trip(tmp_path):
    """Best epoch and temperature come from the Training holdout; PublicTest (here: a set whose labels are
    shuffled, so it would choose differently) is only reported."""
    from kiosk.emotion import export, train
    from kiosk.emotion.classifier import EmotionClassifier
    from kiosk.emotion.data import holdout

    data = synthetic_faces(tmp_path / "faces.npz", n=280)
    faces = load_npz(data)
    shuffled = tmp_path / "shuffled.npz"
    np.savez(shuffled, images=faces.images, labels=np.random.default_rng(1).permutation(faces.labels))
    run = tmp_path / "run"
    args = [
        "--train",
        str(data),
        "--test",
        str(shuffled),
        "--arch",
        "compact-small",
        "--batch-size",
        "16",
        "--lr",
        "0.05",
        "--out",
        str(run),
        "--threads",
        "1",
    ]
    assert train.main([*args, "--epochs", "1"]) == 0
    assert train.main([*args, "--epochs", "2", "--resume"]) == 0  # continues at epoch 2
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    summary = json.loads((run / "summary.json").read_text())
    chosen = max(history, key=lambda row: row["val_accuracy"])
    assert summary["best_epoch"] == chosen["epoch"] and summary["selection"]["split"] == "Training holdout"
    assert summary["selection"]["faces"] == len(holdout(faces, 0.1)[1]) == 28
    assert summary["selection"]["accuracy"] == pytest.approx(chosen["val_accuracy"])
    assert all("test_accuracy" in row for row in history) and summary["reported_on"] == "shuffled.npz"
    assert summary["machine"]["cpus"] >= 1 and summary["machine"]["cpu_model"]
    assert (run / "curves.png").stat().st_size > 1000 and (run / "confusion.png").stat().st_size > 1000
    model_dir = tmp_path / "model"
    argv = ["--checkpoint", str(run / "best.pt"), "--train", str(data), "--test", str(shuffled), "--out"]
    assert export.main([*argv, str(model_dir), "--no-card"]) == 0
    manifest = load_manifest(model_dir)
    assert manifest.metrics["onnx_parity_max_abs"] <= export.PARITY_TOLERANCE
    assert manifest.labels[3] == "happy"
    # the temperature is the one the holdout gives, fitted here again from the served model
    held = holdout(faces, 0.1)[1]
    served = EmotionClassifier(model_dir, ["onnxruntime-cpu"])
    expected = metrics.fit_temperature(served.logits(held.images), held.labels)
    assert manifest.calibration_temperature == pytest.approx(expected, abs=2e-3)
    assert manifest.metrics["calibration"] == "Training holdout 10% (28 faces, seed 2013)"
    on_test = metrics.fit_temperature(served.logits(load_npz(shuffled).images), load_npz(shuffled).labels)
    assert abs(on_test - expected) > 0.01  # the test split would have given another temperature

    # a second run with another seed; both exported as one ensemble graph with its model card
    other = tmp_path / "run-seed-1"
    assert train.main([*[a if a != str(run) else str(other) for a in args], "--epochs", "1", "--seed", "1"]) == 0
    ensemble_dir = tmp_path / "ensemble"
    checkpoints = [str(run / "best.pt"), str(other / "best.pt")]
    argv = ["--checkpoint", *checkpoints, "--test", str(data), "--out", str(ensemble_dir), "--train", str(data)]
    assert export.main(argv) == 0
    ensemble = export.load_checkpoints([run / "best.pt", other / "best.pt"])
    members = [export.load_checkpoints([path]) for path in (run / "best.pt", other / "best.pt")]
    pixels = torch.rand(4, 1, 48, 48)
    with torch.no_grad():
        expected = (members[0](pixels) + members[1](pixels)) / 2
        torch.testing.assert_close(ensemble(pixels), expected)
    assert load_manifest(ensemble_dir).metrics["onnx_parity_max_abs"] <= export.PARITY_TOLERANCE
    card = (ensemble_dir / "MODEL_CARD.md").read_text()
    assert "Ensemble of 2" in card and "run-seed-1 (seed 1" in card
    assert "holdout of Training (28 faces, seed 2013)" in card and "2-core" not in card


def test_the_export_needs_the_training_data_for_its_holdout(tmp_path, capsys):
    from kiosk.emotion import export

    with pytest.raises(SystemExit):
        export.main(["--checkpoint", "best.pt", "--test", "t.npz", "--out", str(tmp_path)])
    assert "--train" in capsys.readouterr().err


def test_duplicate_check_finds_exact_and_near_copies():
    from kiosk.emotion.hygiene import duplicates

    rng = np.random.default_rng(3)
    train = rng.integers(0, 255, (50, 48, 48), dtype=np.uint8)
    fresh = rng.integers(0, 255, (3, 48, 48), dtype=np.uint8)
    brighter = np.clip(train[7].astype(int) + 3, 0, 255).astype(np.uint8)  # a re-encoded copy
    test = np.concatenate([fresh, train[[2]], brighter[None]])
    report = duplicates(train, test)
    assert report["exact"] == 1 and report["exact_indices"] == [3]
    assert report["near"] == 2 and report["all_near_indices"] == [3, 4]


def test_eval_reports_every_figure(tmp_path):
    from kiosk.emotion.evaluate import evaluate, tta_views
    from tests.modelkit import tiny_model_dir

    data = synthetic_faces(tmp_path / "faces.npz", n=40)
    report = evaluate(
        tiny_model_dir(tmp_path / "m"), data, tta=True, runtimes=["onnxruntime-cpu"], exclude_copies_of=data
    )
    for key in ("accuracy", "macro_recall", "per_class_recall", "confusion", "n", "ms_per_face", "runtime", "model"):
        assert key in report
    assert report["n"] == 40 and sum(map(sum, report["confusion"])) == 40
    assert report["without_training_copies"]["n"] == 0  # every face is its own copy
    assert len(tta_views(np.zeros((2, 1, 48, 48), np.float32))) == 10


def test_csv_and_image_folder_loaders(tmp_path):
    import cv2

    from kiosk.emotion.data import load_faces

    rng = np.random.default_rng(5)
    faces = rng.integers(0, 255, (6, 48, 48), dtype=np.uint8)
    rows = ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(map(str, f.ravel()))},{'Training' if i < 4 else 'PublicTest'}" for i, f in enumerate(faces)
    ]
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    train = load_faces(tmp_path / "fer2013.csv:Training")
    assert len(train) == 4 and train.labels.tolist() == [0, 1, 2, 3] and (train.images[2] == faces[2]).all()
    assert len(load_faces(f"{tmp_path / 'fer2013.csv'}:PublicTest")) == 2
    assert len(load_faces(tmp_path / "fer2013.csv")) == 6

    for name, face in (("happy", faces[0]), ("sad", faces[1]), ("sad", faces[2])):
        (tmp_path / "train" / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(tmp_path / "train" / name / f"{len(list((tmp_path / 'train').rglob('*.png')))}.png"),
            cv2.resize(face, (96, 96)),
        )
    folder = load_faces(tmp_path / "train")
    assert sorted(folder.labels.tolist()) == [3, 4, 4] and folder.images.shape == (3, 48, 48)

    (tmp_path / "bad.csv").write_text("label,pixels\n1,0 0\n")
    with pytest.raises(ValueError, match="lacks columns"):
        load_faces(tmp_path / "bad.csv")


def test_a_time_budget_fits_the_epochs_and_ends_the_decay_with_them(tmp_path):
    """``--minutes``: the first epoch is timed, the run keeps only the epochs that fit, and the learning rate
    still decays to zero at the last of them (a lent GPU's minutes, not a cut-off schedule)."""
    from kiosk.emotion import train

    assert train.epochs_that_fit(6.0, 2.0, 500) == 180
    assert train.epochs_that_fit(6.0, 2.0, 100) == 100
    assert train.epochs_that_fit(0.01, 30.0, 100) == 1
    assert train.epochs_that_fit(6.0, 2.0, 500, done=3, elapsed=36.0) == 3 + 162  # the first epochs ran slower
    assert train.epochs_that_fit(1.0, 2.0, 500, done=4, elapsed=90.0) == 4  # over budget: stop where it is
    data = synthetic_faces(tmp_path / "faces.npz", n=280)
    run = tmp_path / "run"
    argv = ["--train", str(data), "--arch", "compact-small", "--batch-size", "32", "--out", str(run)]
    assert train.main([*argv, "--epochs", "50", "--minutes", "0.0001", "--warmup-epochs", "0", "--threads", "1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 1 and len(json.loads((run / "history.json").read_text())) == 1
    last = torch.load(run / "last.pt", weights_only=False)
    assert last["args"]["epochs"] == 1 and last["plan"]["total_steps"] == 252 // 32  # 90% of 280 faces trained
    # the decay reads the plan at every step: shortened, it reaches zero at the new last step
    plan = {"warmup_steps": 0, "total_steps": 100}
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    scheduler = train.make_scheduler(optimizer, plan)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    plan["total_steps"] = 10
    assert scheduler.get_last_lr()[0] > 0.04 and scheduler.lr_lambdas[0](10) == 0.0


def test_the_vgg_class_network_reads_a_48_pixel_face():
    from kiosk.emotion import architectures

    net = architectures.build("vgg13").eval()
    assert net(torch.rand(2, 1, 48, 48)).shape == (2, 7)
    assert 9e6 < architectures.parameter_count(net) < 1e7
