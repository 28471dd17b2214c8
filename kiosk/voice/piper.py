"""A Piper voice (VITS, ONNX) run by ONNX Runtime in the kiosk's own process: phoneme ids in, audio out.

No Piper code runs here (``piper-tts`` is GPL-3.0): the voice is an ONNX graph plus a JSON config (sample
rate, phoneme id map, scales), and feeding it is a few lines. The phoneme ids follow Piper's layout: BOS,
then each phoneme followed by the pad symbol, then EOS.

When the graph exposes its phoneme durations (``kiosk models pull`` adds the output that Piper's graph
computes anyway, ``/Ceil``), each phoneme's length in audio frames is known, so the page can highlight
each word exactly as it is spoken. A voice without it still speaks; its word timings are then estimated.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"
DURATIONS_NODE = "/Ceil"  # VITS: w_ceil = ceil(exp(logw) * length_scale), frames per phoneme id
HOP_LENGTH = 256  # audio samples per frame in every Piper voice


class VoiceError(RuntimeError):
    """The voice cannot be loaded or cannot speak."""


class AudioSection(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sample_rate: int = Field(ge=8000, le=48000)
    quality: str | None = None


class InferenceSection(BaseModel):
    model_config = ConfigDict(extra="ignore")
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8


class PiperConfig(BaseModel):
    """The part of a Piper ``<voice>.onnx.json`` the kiosk reads."""

    model_config = ConfigDict(extra="ignore")
    audio: AudioSection
    espeak: dict[str, str] = Field(default_factory=lambda: {"voice": "en-us"})
    inference: InferenceSection = InferenceSection()
    phoneme_type: str = "espeak"
    phoneme_id_map: dict[str, list[int]]
    num_speakers: int = 1
    dataset: str | None = None


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono, -1..1
    durations: np.ndarray | None  # frames per phoneme id, when the graph gives them


class PiperVoice:
    def __init__(self, model: Path, config: Path, threads: int = 1) -> None:
        try:
            self.config = PiperConfig.model_validate_json(Path(config).read_text())
        except (OSError, ValueError) as exc:
            raise VoiceError(f"voice config {config}: {exc}") from None
        if self.config.phoneme_type != "espeak":
            raise VoiceError(f"voice uses {self.config.phoneme_type} phonemes; the kiosk speaks espeak phonemes")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Each sentence has its own length, so each inference's buffers differ: ONNX Runtime's memory
        # patterns (one plan per shape) and glibc's fragmented heap would keep growing the process; without
        # the patterns, and with the heap trimmed between scenes (``release_memory``), it levels off at about
        # 255 MiB (bench: make bench-voice). The arena stays: without it synthesis is ~20% slower.
        options.enable_mem_pattern = False
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VoiceError(f"voice model {model}: {type(exc).__name__}: {str(exc)[:200]}") from None
        names = [o.name for o in self.session.get_outputs()]
        self.durations_output = next((n for n in names if n.startswith(DURATIONS_NODE)), None)
        self.outputs = [names[0]] + ([self.durations_output] if self.durations_output else [])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.id_map = self.config.phoneme_id_map

    @property
    def sample_rate(self) -> int:
        return self.config.audio.sample_rate

    @property
    def espeak_voice(self) -> str:
        return self.config.espeak.get("voice", "en-us")

    def ids(self, phonemes: str) -> tuple[list[int], list[int]]:
        """Phoneme ids for ``phonemes`` and, for each id, the index of the phoneme it came from (-1: none)."""
        ids, owners = [*self.id_map[BOS], *self.id_map[PAD]], [-1, -1]
        for index, phoneme in enumerate(phonemes):
            if phoneme not in self.id_map:
                continue  # a symbol this voice never learned: Piper skips it too
            for value in (*self.id_map[phoneme], *self.id_map[PAD]):
                ids.append(value)
                owners.append(index)
        ids.extend(self.id_map[EOS])
        owners.append(-1)
        return ids, owners

    def speak(self, ids: list[int], rate: float = 1.0) -> Speech:
        """Audio for phoneme ids; ``rate`` below 1 speaks more slowly."""
        scales = self.config.inference
        feed = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([scales.noise_scale, scales.length_scale / rate, scales.noise_w], dtype=np.float32),
        }
        if "sid" in self.inputs:
            feed["sid"] = np.array([0], dtype=np.int64)
        try:
            results = self.session.run(self.outputs, feed)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VoiceError(f"synthesis failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        audio = np.asarray(results[0], dtype=np.float32).reshape(-1)
        durations = np.asarray(results[1]).reshape(-1) if len(results) > 1 else None
        if durations is not None and (len(durations) != len(ids) or int(durations.sum()) * HOP_LENGTH != len(audio)):
            durations = None  # not the graph this code knows: estimate instead of trusting it
        return Speech(audio, durations)


def release_memory() -> None:
    """Give the heap's free pages back to the system (glibc; elsewhere nothing to do)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def expose_durations(source: Path, target: Path) -> bool:
    """Write ``source`` to ``target`` with Piper's phoneme durations as a second graph output.

    The weights and every node stay as they are; only an output is added. Returns False (and copies the
    model unchanged) when the graph has no such node.
    """
    import onnx  # only needed when a voice is installed

    model = onnx.load(str(source))
    node = next((n for n in model.graph.node if n.name == DURATIONS_NODE and n.op_type == "Ceil"), None)
    if node is not None and node.output[0] not in {o.name for o in model.graph.output}:
        model.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(target))
    return node is not None
