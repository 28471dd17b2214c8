import os

import cv2
import numpy as np
import pytest

from kiosk.web.media import MediaStore

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><circle r="4"/></svg>'


def png(width: int = 8, height: int = 8) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))[1].tobytes()


def test_oldest_pictures_go_first(tmp_path):
    store = MediaStore(tmp_path, max_files=3, max_bytes=10_000)
    names = []
    for i in range(5):
        names.append(store.put(f"{i:032x}", "image/svg+xml", SVG))
        os.utime(tmp_path / names[-1], ns=(i * 10**9, i * 10**9))  # distinct ages on coarse clocks
    store.put("f" * 32, "image/png", png())
    assert len(store) == 3
    assert store.get(names[0]) is None and store.get(names[4]) == ("image/svg+xml", SVG)


def test_size_bound(tmp_path):
    picture = png(40, 40)
    store = MediaStore(tmp_path, max_files=100, max_bytes=int(len(picture) * 2.5))
    for i in range(5):
        store.put(f"{i:032x}", "image/png", picture)
    assert len(store) == 2


@pytest.mark.parametrize(
    "media_id,media_type", [("../etc/passwd", "image/png"), ("a" * 32, "text/html"), ("ABC", "image/png")]
)
def test_refuses_odd_names_and_types(tmp_path, media_id, media_type):
    with pytest.raises(ValueError):
        MediaStore(tmp_path).put(media_id, media_type, b"x")


def test_get_refuses_paths(tmp_path):
    assert MediaStore(tmp_path).get("../../secret.png") is None
