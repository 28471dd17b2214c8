"""The diffusers code path on tiny pipelines built here from configs: pictures, the safety gate, the
refusal of an unchecked pipeline, and the service's storybook-first order."""

import importlib.util
import io

import pytest

from kiosk.config import IllustrateConfig, Settings
from kiosk.events import HeroLook, Scene, StoryEvent
from kiosk.illustrate.diffusion import DiffusionIllustrator, DiffusionSettings, DiffusionUnavailable

pytestmark = pytest.mark.skipif(importlib.util.find_spec("diffusers") is None, reason="diffusers not installed")

TINY = DiffusionSettings(steps=2, width=32, height=32)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    from kiosk.illustrate.tinypipe import build_pipeline

    directory = tmp_path_factory.mktemp("tiny-sd")
    build_pipeline(directory)
    return directory


def test_draws_a_png_from_a_local_pipeline(pipeline_dir):
    from PIL import Image

    from kiosk.illustrate.tinypipe import set_safety_verdict

    set_safety_verdict(pipeline_dir, flag_everything=False)
    illustrator = DiffusionIllustrator(pipeline_dir, TINY, device="cpu")
    picture = illustrator.draw("a young child in a red jumper", "in a meadow, with sun", seed=3)
    assert not picture.flagged
    image = Image.open(io.BytesIO(picture.png))
    assert image.size == (32, 32) and image.format == "PNG"
    again = illustrator.draw("a young child in a red jumper", "in a meadow, with sun", seed=3)
    assert again.png == picture.png  # same seed, same picture: one consistent character per story
    assert "a young child in a red jumper" in illustrator.prompt("a young child in a red jumper", "x")


def test_a_flagged_picture_is_never_returned(pipeline_dir):
    from kiosk.illustrate.tinypipe import set_safety_verdict

    set_safety_verdict(pipeline_dir, flag_everything=True)
    try:
        picture = DiffusionIllustrator(pipeline_dir, TINY, device="cpu").draw("a child", "in a garden", seed=1)
        assert picture.flagged and picture.png == b""
    finally:
        set_safety_verdict(pipeline_dir, flag_everything=False)


def test_a_pipeline_without_safety_checker_is_refused(tmp_path):
    from kiosk.illustrate.tinypipe import build_pipeline

    build_pipeline(tmp_path, safety_checker=False)
    with pytest.raises(DiffusionUnavailable, match="no safety checker"):
        DiffusionIllustrator(tmp_path, TINY, device="cpu")
    assert DiffusionIllustrator(
        tmp_path, DiffusionSettings(steps=1, width=32, height=32, allow_without_safety_checker=True), device="cpu"
    )


def test_missing_pipeline_is_a_clear_error(tmp_path):
    with pytest.raises(DiffusionUnavailable, match=r"model_index\.json"):
        DiffusionIllustrator(tmp_path, TINY)


def test_service_sends_storybook_pictures_first_then_diffusion(pipeline_dir, tmp_path):
    from kiosk.illustrate.service import IllustrateService

    settings = Settings(
        run_dir=tmp_path, illustrate=IllustrateConfig(model_dir=pipeline_dir, steps=2, width=32, height=32)
    )
    service = IllustrateService(settings)
    service.setup()
    story = StoryEvent(
        session_id="s",
        emotion="happy",
        title="T",
        hero=HeroLook(description="a young child"),
        scenes=[
            Scene(
                text=f"Scene {i}.", illustration_prompt="in a meadow", setting="meadow", objects=["sun"], mood="happy"
            )
            for i in range(3)
        ],
        generator="template",
        fallback=False,
        latency_ms=1,
    )
    events = list(service.handle(story))
    assert [e.media_type for e in events] == ["image/svg+xml"] * 3 + ["image/png"] * 3
    assert [e.scene_index for e in events] == [0, 1, 2, 0, 1, 2]
    assert events[3].illustrator.startswith("diffusion")


def test_clip_score_from_a_local_clip_directory(tmp_path, pipeline_dir):
    from kiosk.illustrate.evaluate import clip_score
    from kiosk.illustrate.tinypipe import build_tiny_clip

    clip_dir = build_tiny_clip(tmp_path / "clip")
    picture = DiffusionIllustrator(pipeline_dir, TINY, device="cpu").draw("a child", "in a meadow", seed=2)
    result = clip_score(clip_dir, [("a child in a meadow", picture.png)])
    assert 0 <= result["clip_score"] <= 100 and result["n"] == 1
    assert clip_score(tmp_path / "nothing", [])["clip_score"] is None
