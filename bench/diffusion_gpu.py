"""GPU diffusion benchmark (JSON), ready for a lent GPU: SD 1.5-sized pipeline (random weights are fine for
timing), 512×512, 25 steps, guidance 7.5, fp16 — seconds per picture, plain and with the speed options
(channels-last, with ``--compile`` also torch.compile of the UNet; and a 4-step LCM schedule at guidance 1).
Compiling an SD-sized UNet in max-autotune takes minutes, more than a 15-minute lease can spare beside
training, hence off by default. ``--tiny`` runs the same code on a tiny pipeline on the CPU, to check the
script where no GPU is lent."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def timed(pipe, steps: int, guidance: float, size: int, repeats: int, device: str) -> float:
    import torch

    def once() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        pipe(
            "a young child in a meadow, storybook illustration",
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=size,
            height=size,
            output_type="pil",
        )
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    once()  # warm-up (and compilation)
    return round(statistics.median(once() for _ in range(repeats)), 3)


def main(argv: list[str] | None = None) -> int:
    import torch
    from diffusers import LCMScheduler, StableDiffusionPipeline

    from kiosk.illustrate.tinypipe import build_pipeline

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also torch.compile the UNet (minutes on a GPU)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    size, steps = (32, 2) if args.tiny else (512, 25)
    with tempfile.TemporaryDirectory() as tmp:
        build_pipeline(Path(tmp), "tiny" if args.tiny else "sd15", safety_checker=False)
        pipe = StableDiffusionPipeline.from_pretrained(
            tmp, dtype=dtype, local_files_only=True, safety_checker=None, requires_safety_checker=False
        ).to(device)
    pipe.set_progress_bar_config(disable=True)
    result = {
        "benchmark": "diffusion",
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "dtype": str(dtype),
        "size": size,
        "steps": steps,
        "guidance": 7.5,
    }
    result["plain_s_per_picture"] = timed(pipe, steps, 7.5, size, args.repeats, device)
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    speed_options = "channels_last"
    if device == "cuda" and args.compile:
        pipe.unet = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs", fullgraph=True)
        speed_options += "_compiled"
    result[f"{speed_options}_s_per_picture"] = timed(pipe, steps, 7.5, size, args.repeats, device)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    result["lcm_4_steps_guidance_1_s_per_picture"] = timed(
        pipe, 4 if not args.tiny else 2, 1.0, size, args.repeats, device
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
