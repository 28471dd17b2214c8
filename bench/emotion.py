"""Emotion benchmark (JSON): PublicTest accuracy and single-face latency per runtime (1 thread), with and
without TTA; runtimes that cannot run here are listed with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from bench import machine
from kiosk.config import PROJECT_ROOT, Settings
from kiosk.emotion.evaluate import evaluate
from kiosk.emotion.runtimes import RuntimeUnavailable

FER = PROJECT_ROOT.parent / "shared" / "data" / "fer2013"


def main() -> int:
    settings = Settings()
    data = FER / "fer2013_publictest.npz"
    if not data.exists():
        print(json.dumps({"benchmark": "emotion", "skipped": f"no FER2013 PublicTest at {data.name}"}))
        return 0
    results: dict = {
        "benchmark": "emotion",
        "machine": machine.describe(),
        "model_dir": Path(settings.emotion.model_dir).name,
    }
    results["runtimes"] = {}
    for runtime in ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"):
        try:
            rows = {}
            for tta in (False, True):
                report = evaluate(settings.emotion.model_dir, data, tta, [runtime], threads=1)
                rows["tta" if tta else "plain"] = {k: report[k] for k in ("accuracy", "macro_recall", "ms_per_face")}
            results["runtimes"][runtime] = rows
        except RuntimeUnavailable as exc:
            results["runtimes"][runtime] = {"available": False, "reason": str(exc)}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
