"""``kiosk illustrate eval``: per-picture latency by illustrator, and CLIPScore (scene text vs picture)
through a CLIP model from a local directory when one is installed; otherwise reported as unavailable."""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

from kiosk.config import Settings
from kiosk.emotion.labels import EMOTIONS
from kiosk.illustrate import storybook
from kiosk.story import template


def scenes(n: int):
    for i in range(n):
        story = template.tell(EMOTIONS[i % len(EMOTIONS)], seed=i)
        for scene in story.scenes:
            yield story, scene


def clip_score(clip_dir: Path | None, pairs: list[tuple[str, bytes]]) -> dict:
    """Mean CLIPScore (Hessel et al. 2021: 100 × max(cos, 0)) over (text, PNG) pairs."""
    if clip_dir is None or not (clip_dir / "config.json").is_file():
        return {"clip_score": None, "reason": f"no CLIP model at {clip_dir} (CLIPScore unavailable)"}
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(clip_dir, local_files_only=True)
    scores = []
    with torch.no_grad():
        for text, png in pairs:
            inputs = processor(
                text=[text],
                images=Image.open(io.BytesIO(png)).convert("RGB"),
                return_tensors="pt",
                padding=True,
                truncation=True,
            )
            out = model(**inputs)
            cosine = torch.nn.functional.cosine_similarity(out.text_embeds, out.image_embeds).item()
            scores.append(100 * max(cosine, 0.0))
    return {"clip_score": round(statistics.mean(scores), 2), "n": len(scores)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk illustrate eval", description=__doc__)
    parser.add_argument("--stories", type=int, default=7)
    parser.add_argument("--clip", type=Path, default=None, help="local CLIP model directory (transformers)")
    args = parser.parse_args(argv)
    settings = Settings()
    report: dict = {"storybook": {}, "diffusion": None}
    times = []
    for story, scene in scenes(args.stories):
        started = time.perf_counter()
        storybook.render_svg(scene.setting, scene.objects, story.emotion, "blue", True)
        times.append((time.perf_counter() - started) * 1000)
    report["storybook"] = {
        "pictures": len(times),
        "ms_median": round(statistics.median(times), 3),
        "ms_max": round(max(times), 3),
        "clip_score": None,
        "clip_note": "SVG pictures are not rasterised for CLIP here",
    }
    from kiosk.illustrate.diffusion import DiffusionIllustrator, DiffusionSettings, DiffusionUnavailable

    cfg = settings.illustrate
    try:
        diffusion = DiffusionIllustrator(
            cfg.model_dir, DiffusionSettings(steps=cfg.steps, guidance=cfg.guidance, width=cfg.width, height=cfg.height)
        )
    except DiffusionUnavailable as exc:
        report["diffusion"] = {"available": False, "reason": str(exc)}
    else:
        pairs, latencies, flagged = [], [], 0
        for story, scene in scenes(args.stories):
            picture = diffusion.draw(story.hero.looks, scene.illustration_prompt, seed=1)
            latencies.append(picture.latency_ms)
            flagged += picture.flagged
            if not picture.flagged:
                pairs.append((scene.text, picture.png))
        report["diffusion"] = {
            "available": True,
            "device": diffusion.device,
            "pictures": len(latencies),
            "ms_median": round(statistics.median(latencies), 1),
            "flagged": flagged,
            **clip_score(args.clip, pairs),
        }
    print(json.dumps(report))
    return 0
