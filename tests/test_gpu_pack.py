"""The face data set packed to travel to a GPU machine comes back as the npz the training recipe reads."""

import numpy as np

from gpu import pack_faces
from kiosk.emotion.data import load_npz


def test_faces_travel_as_a_mosaic_and_come_back_in_order(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (333, 48, 48)).astype(np.uint8)  # not a whole number of mosaic rows
    images[:, 8:40, 8:40] = np.arange(333)[:, None, None] % 200  # each face its own flat square
    labels = rng.integers(0, 7, 333)
    np.savez(tmp_path / "faces.npz", images=images, labels=labels)
    report = pack_faces.pack(tmp_path / "faces.npz", tmp_path / "packed", quality=85)
    assert report["faces"] == 333 and report["bytes"] < images.nbytes
    back = load_npz(pack_faces.unpack(tmp_path / "packed", tmp_path / "back.npz"))
    assert (back.labels == labels).all() and back.images.shape == images.shape
    centres = back.images[:, 16:32, 16:32].astype(int).mean(axis=(1, 2))
    assert np.abs(centres - np.arange(333) % 200).max() < 3  # every face in its place, barely changed


def test_the_ensemble_is_chosen_by_forward_selection_on_the_holdout():
    import numpy as np

    from gpu.ensemble import greedy_selection

    labels = np.array([0, 1, 0, 1, 0, 1])
    confident_wrong_half = np.array([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.4, 0.6]])
    other_half = np.array([[0.4, 0.6], [0.6, 0.4], [0.6, 0.4], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    useless = np.full((6, 2), 0.5)
    chosen = greedy_selection({"a": confident_wrong_half, "b": other_half, "c": useless}, labels)
    assert sorted(chosen) == ["a", "b"]  # each fixes the other's mistakes (6 of 6 together); c adds nothing
