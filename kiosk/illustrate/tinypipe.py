"""Build Stable Diffusion pipelines from configs alone (no downloads): tiny ones for tests, SD 1.5-sized
ones with random weights for GPU timing. A character-level CLIP tokenizer is written locally."""

from __future__ import annotations

import json
import string
from pathlib import Path


def write_char_tokenizer(directory: Path) -> Path:
    """A CLIP BPE tokenizer whose vocabulary is single characters (no merges)."""
    directory.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + ",.'!?-")
    tokens = ["<|startoftext|>", "<|endoftext|>", "!"] + chars + [c + "</w>" for c in chars]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return directory


def build_pipeline(directory: Path, size: str = "tiny", safety_checker: bool = True):
    """A StableDiffusionPipeline from configs; ``size`` is "tiny" (tests) or "sd15" (GPU timing)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    tokenizer = CLIPTokenizer(
        str(write_char_tokenizer(directory / "_tok") / "vocab.json"),
        str(directory / "_tok" / "merges.txt"),
        pad_token="!",
        model_max_length=77,
    )
    if size == "tiny":
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16),
            layers_per_block=1,
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=4,
            attention_head_dim=4,
        )
        vae = AutoencoderKL(
            block_out_channels=(8, 16),
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=4,
            sample_size=32,
        )
        text = CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        )
        vision = {
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "image_size": 32,
            "patch_size": 4,
        }
        projection = 16
        image_size = 32
    else:  # Stable Diffusion 1.5 architecture, random weights
        unet = UNet2DConditionModel(
            sample_size=64,
            cross_attention_dim=768,
            attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            latent_channels=4,
            sample_size=512,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        )
        text = CLIPTextConfig(
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            vocab_size=49408,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        )
        vision = {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            "image_size": 224,
            "patch_size": 14,
        }
        projection = 768
        image_size = 224
    checker = None
    extractor = None
    if safety_checker:
        checker = StableDiffusionSafetyChecker(
            CLIPConfig(text_config=text.to_dict(), vision_config=vision, projection_dim=projection)
        )
        extractor = CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=checker,
        feature_extractor=extractor,
        requires_safety_checker=safety_checker,
    )
    pipe.save_pretrained(directory)
    return pipe


def set_safety_verdict(directory: Path, flag_everything: bool) -> None:
    """Make the saved safety checker's thresholds flag every picture (or none), for tests."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

    checker = StableDiffusionSafetyChecker.from_pretrained(directory / "safety_checker")
    value = -10.0 if flag_everything else 10.0
    checker.concept_embeds_weights.data.fill_(value)
    checker.special_care_embeds_weights.data.fill_(value)
    checker.save_pretrained(directory / "safety_checker")


TINY_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 1,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 2,
}
TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 1,
    "image_size": 32,
    "patch_size": 8,
}


def build_tiny_clip(directory: Path) -> Path:
    """A tiny CLIP (model + processor) from configs, for the CLIPScore code path."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    tokens = write_char_tokenizer(directory / "_tok")
    tokenizer = CLIPTokenizer(
        str(tokens / "vocab.json"), str(tokens / "merges.txt"), pad_token="!", model_max_length=77
    )
    config = CLIPConfig(
        text_config=TINY_TEXT | {"vocab_size": len(tokenizer)}, vision_config=TINY_VISION, projection_dim=16
    )
    CLIPModel(config).save_pretrained(directory)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(directory)
    return directory
