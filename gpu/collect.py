"""Turn what a lease brought back (``checkpoints.part*``) into run directories ``kiosk emotion export`` reads.

Each run gets ``best.pt`` (weights back in float32), ``last.pt`` with the run's arguments, plan and
history (no optimizer state: the run is finished), ``history.json``, ``summary.json`` from the lease's
``results.json`` and its training curves, drawn here.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path

import torch

from kiosk.emotion import plots

logger = logging.getLogger(__name__)


def read_bundle(files: Path) -> dict:
    parts = sorted(files.glob("checkpoints.part*"), key=lambda path: int(path.suffix.removeprefix(".part")))
    if not parts:
        raise FileNotFoundError(f"no checkpoints.part* in {files}")
    return torch.load(io.BytesIO(b"".join(part.read_bytes() for part in parts)), weights_only=False)


def collect(files: Path, runs: Path) -> list[Path]:
    bundle = read_bundle(files)
    results = json.loads((files / "results.json").read_text()) if (files / "results.json").exists() else {}
    written = []
    for name, run in bundle.items():
        directory = runs / name
        directory.mkdir(parents=True, exist_ok=True)
        best = run["best"] | {"model": {key: value.float() for key, value in run["best"]["model"].items()}}
        torch.save(best, directory / "best.pt")
        torch.save({"args": run["args"], "plan": run["plan"], "history": run["history"]}, directory / "last.pt")
        (directory / "history.json").write_text(json.dumps(run["history"], indent=1))
        summary = (results.get("training", {}).get(name) or {}).get("summary")
        if summary:
            (directory / "summary.json").write_text(json.dumps(summary, indent=1))
        if run["history"]:
            plots.training_curves(run["history"], directory / "curves.png")
        written.append(directory)
        logger.info("%s: best epoch %d of %d", name, run["best"]["epoch"] + 1, len(run["history"]))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu.collect", description=__doc__)
    parser.add_argument("files", type=Path, help="the folder the lease's files came back to")
    parser.add_argument("runs", type=Path, help="where to write the run directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for directory in collect(args.files, args.runs):
        print(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
