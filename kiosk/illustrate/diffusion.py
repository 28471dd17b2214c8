"""The diffusion illustrator: an anime Stable Diffusion 1.x pipeline from a local model directory.

The seed's parameters are configuration (25 steps, guidance 7.5, a negative prompt); fp16 on CUDA; optional
attention slicing; an optional few-step LCM-LoRA when its weights are installed (guidance must then be
low, which weakens the negative prompt — so the safety checker matters more, not less).

Safety: the pipeline's own safety checker judges every picture. A flagged picture is never returned, and
a pipeline without a safety checker is refused unless the configuration explicitly allows it; either way
the caller shows the storybook picture instead. One story keeps one character: the hero's description
leads every prompt and the seed is fixed per story.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

NEGATIVE_PROMPT = (
    "nsfw, nude, violence, blood, weapon, scary, horror, dark, creepy, sad eyes, crying, injury, "
    "text, watermark, signature, deformed, extra fingers, bad anatomy, blurry, low quality"
)
STYLE = "anime storybook illustration, soft pastel colours, gentle, cute, child-friendly"


class DiffusionUnavailable(RuntimeError):
    """diffusers, torch or the model directory is missing, or the pipeline has no safety checker."""


@dataclass(frozen=True)
class Picture:
    png: bytes
    flagged: bool
    latency_ms: float


@dataclass(frozen=True)
class DiffusionSettings:
    steps: int = 25
    guidance: float = 7.5
    width: int = 512
    height: int = 512
    negative_prompt: str = NEGATIVE_PROMPT
    scheduler: str | None = None  # e.g. "DPMSolverMultistepScheduler"; None keeps the model's own
    attention_slicing: bool = False
    lcm_lora_dir: Path | None = None  # few-step LoRA weights (local), used with 4–8 steps, guidance ≈ 1–2
    allow_without_safety_checker: bool = False


class DiffusionIllustrator:
    def __init__(
        self, model_dir: Path, settings: DiffusionSettings = DiffusionSettings(), device: str | None = None
    ) -> None:
        if importlib.util.find_spec("diffusers") is None:
            raise DiffusionUnavailable("diffusers is not installed")
        if not (Path(model_dir) / "model_index.json").is_file():
            raise DiffusionUnavailable(f"no diffusers pipeline at {model_dir} (model_index.json missing)")
        import diffusers
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        started = time.perf_counter()
        pipe = diffusers.StableDiffusionPipeline.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
        if pipe.safety_checker is None and not settings.allow_without_safety_checker:
            raise DiffusionUnavailable(f"{model_dir} has no safety checker; refusing unchecked pictures")
        if settings.scheduler:
            pipe.scheduler = getattr(diffusers, settings.scheduler).from_config(pipe.scheduler.config)
        if settings.lcm_lora_dir is not None:
            pipe.load_lora_weights(str(settings.lcm_lora_dir))
            pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
        if settings.attention_slicing:
            pipe.enable_attention_slicing()
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self.settings = settings
        self.name = f"diffusion ({Path(model_dir).name})"
        logger.info("loaded %s on %s in %.1f s", self.name, self.device, time.perf_counter() - started)

    def prompt(self, hero: str, scene_prompt: str) -> str:
        return f"{STYLE}, {hero}, {scene_prompt}"

    def draw(self, hero: str, scene_prompt: str, seed: int) -> Picture:
        import torch

        started = time.perf_counter()
        generator = torch.Generator(device="cpu").manual_seed(seed)
        result = self.pipe(
            self.prompt(hero, scene_prompt),
            negative_prompt=self.settings.negative_prompt,
            num_inference_steps=self.settings.steps,
            guidance_scale=self.settings.guidance,
            width=self.settings.width,
            height=self.settings.height,
            generator=generator,
            output_type="pil",
        )
        flags = result.nsfw_content_detected
        flagged = bool(flags[0]) if flags is not None else not self.settings.allow_without_safety_checker
        buffer = io.BytesIO()
        result.images[0].save(buffer, format="PNG")
        latency = (time.perf_counter() - started) * 1000
        if flagged:
            logger.warning("diffusion picture flagged by the safety checker: replaced by the storybook picture")
            return Picture(b"", True, latency)
        return Picture(buffer.getvalue(), False, latency)
