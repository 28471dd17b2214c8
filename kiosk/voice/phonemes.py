"""Phonemes from Debian's ``espeak-ng`` program, run as a separate process.

espeak-ng is GPL-3.0; the kiosk is MIT. The kiosk never links or loads espeak-ng (no ctypes, no Python
binding, no ``piper-tts``, whose wheel embeds it): it runs the ``espeak-ng`` program and reads its standard
output, the way any program is used through a pipe, so the two stay separate works. Piper voices were
trained on espeak-ng's IPA, so its phonemes are the ones the voice expects.

One process per scene: every clause on its own input line, one output line per clause (about 40 ms).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import unicodedata

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0


class PhonemizerError(RuntimeError):
    """espeak-ng is missing, failed, or answered something other than one line per clause."""


class Espeak:
    def __init__(self, voice: str = "en-us", program: str = "espeak-ng") -> None:
        path = shutil.which(program)
        if path is None:
            raise PhonemizerError(f"the {program} program is not installed (apt-get install espeak-ng)")
        self.command = [path, "-q", "--ipa", "-b", "1", "-v", voice]

    def clauses(self, clauses: list[str]) -> list[str]:
        """IPA for each clause (words separated by spaces), in order."""
        if not clauses:
            return []
        lines = self._run("\n".join(clauses) + "\n")
        if len(lines) != len(clauses):  # espeak-ng cut a clause of its own accord: ask clause by clause
            logger.debug("espeak-ng gave %d lines for %d clauses; one by one", len(lines), len(clauses))
            lines = [" ".join(self._run(clause + "\n")) for clause in clauses]
        return [unicodedata.normalize("NFD", line.strip()) for line in lines]

    def _run(self, text: str) -> list[str]:
        try:
            done = subprocess.run(self.command, input=text.encode(), capture_output=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PhonemizerError(f"espeak-ng failed: {type(exc).__name__}") from None
        if done.returncode != 0:
            raise PhonemizerError(f"espeak-ng exited {done.returncode}: {done.stderr[:200].decode(errors='replace')}")
        return [line for line in done.stdout.decode(errors="replace").splitlines() if line.strip()]
