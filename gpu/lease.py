"""The one script a lent GPU machine runs (issue: train the production emotion model, take the GPU figures).

A lease is 15 minutes of device time, start-up included, so everything happens in one call, in this order:
the emotion networks train side by side on the GPU for a fixed budget (``kiosk emotion train --minutes``),
their checkpoints and histories are packed into what may come back ($OUT: at most 8 files of 16 MiB), then
the GPU figures are taken while the GPU is otherwise idle: PyTorch ms/face of each network (batch 1 and 16),
the story LLM's architecture in tokens/s, the diffusion benchmark. Each step writes ``results.json`` again,
so a step that runs out of time still leaves the ones before it. What cannot run there is said, with why.

``--tiny`` runs the same steps on the CPU with a few hundred faces, to check the script before a lease.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

CARRY = Path(".gpu-carry")
RUNS = [("resnet18", 0), ("vgg13", 0), ("resnet18", 1)]


class Results:
    """results.json under OUT, rewritten after every step."""

    def __init__(self, path: Path) -> None:
        self.path, self.data = path, {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def put(self, key: str, value) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data, indent=1))


def machine() -> dict:
    info: dict = {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        import torch

        info |= {"torch": torch.__version__, "cuda": torch.version.cuda}
        if torch.cuda.is_available():
            properties = torch.cuda.get_device_properties(0)
            info |= {"gpu": properties.name, "gpu_memory_gib": round(properties.total_memory / 2**30, 1)}
    except ImportError as error:
        info["torch"] = f"missing: {error}"
    return info


def parse_runs(text: str) -> list[tuple[str, int]]:
    """``resnet18:2,vgg13:1`` -> [("resnet18", 2), ("vgg13", 1)]."""
    runs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        arch, _, seed = item.partition(":")
        runs.append((arch, int(seed or 0)))
    return runs


def train_side_by_side(
    train_npz: Path, runs_dir: Path, minutes: float, device: str, extra: list[str], runs: list[tuple[str, int]] = RUNS
) -> dict:
    """Start every network's training at once (the GPU interleaves them) and wait, each with a hard stop."""
    processes = {}
    for arch, seed in runs:
        name = f"{arch}-seed{seed}"
        out = runs_dir / name
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "kiosk.emotion.train", "--train", str(train_npz), "--arch", arch]
        command += ["--seed", str(seed), "--minutes", str(minutes), "--device", device, "--out", str(out), *extra]
        log = (runs_dir / f"{name}.log").open("w")
        quiet = os.environ | {"TQDM_DISABLE": "1"}  # the log keeps the per-epoch lines, not progress bars
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=quiet)
        processes[name] = (process, time.perf_counter())
    outcome = {}
    deadline = time.perf_counter() + minutes * 60 + 120  # the budget, start-up and the final evaluation
    for name, (process, started) in processes.items():
        try:
            code = process.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            process.kill()
            code = "killed at the deadline (best.pt of the last improvement kept)"
        summary_path = runs_dir / name / "summary.json"
        outcome[name] = {
            "exit": code,
            "wall_s": round(time.perf_counter() - started, 1),
            "summary": json.loads(summary_path.read_text()) if summary_path.exists() else None,
            "log_tail": (runs_dir / f"{name}.log").read_text(errors="replace")[-1500:],
        }
    return outcome


def pack_checkpoints(runs_dir: Path, out: Path, part_bytes: int = 15 * 2**20) -> list[str]:
    """The best checkpoint of every run in half precision (BatchNorm statistics kept in float32), with its
    history and arguments, as one file split into parts that fit what may come back."""
    import torch

    bundle = {}
    for run in sorted(p for p in runs_dir.iterdir() if (p / "best.pt").exists()):
        best = torch.load(run / "best.pt", weights_only=False, map_location="cpu")
        weights = {
            key: value.half() if value.is_floating_point() and "running_" not in key else value
            for key, value in best["model"].items()
        }
        last = torch.load(run / "last.pt", weights_only=False, map_location="cpu") if (run / "last.pt").exists() else {}
        bundle[run.name] = {
            "best": {"model": weights, "arch": best["arch"], "epoch": best["epoch"], "summary": best["summary"]},
            "history": last.get("history", []),
            "args": last.get("args", {}),
            "plan": last.get("plan", {}),
        }
    path = runs_dir / "checkpoints.pt"
    torch.save(bundle, path)
    blob, names = path.read_bytes(), []
    for index in range(0, len(blob), part_bytes):
        name = f"checkpoints.part{index // part_bytes}"
        (out / name).write_bytes(blob[index : index + part_bytes])
        names.append(name)
    return names


def emotion_latency(runs_dir: Path, device: str) -> dict:
    """PyTorch ms/face of every trained network and of their ensemble: batch 1 and 16, fp32 and bf16."""
    import torch

    from kiosk.emotion import architectures
    from kiosk.emotion.train import NormalisedNet

    members = {}
    for run in sorted(p for p in runs_dir.iterdir() if (p / "best.pt").exists()):
        best = torch.load(run / "best.pt", weights_only=False, map_location="cpu")
        net = NormalisedNet(architectures.build(best["arch"]))
        net.load_state_dict(best["model"])
        members[run.name] = net.eval().to(device)

    def ms_per_face(nets: list, batch: int, dtype) -> float:
        pixels = torch.rand(batch, 1, 48, 48, device=device)
        times = []
        with torch.inference_mode(), torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            for repeat in range(60):
                if device == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                torch.stack([net(pixels) for net in nets]).mean(0).float().cpu()
                if repeat >= 10:
                    times.append(time.perf_counter() - started)
        times.sort()
        return round(1000 * times[len(times) // 2] / batch, 4)

    result = {}
    groups = {name: [net] for name, net in members.items()} | {"ensemble of all": list(members.values())}
    for name, nets in groups.items():
        result[name] = {
            f"{dtype_name}_batch{batch}_ms_per_face": ms_per_face(nets, batch, dtype)
            for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
            for batch in (1, 16)
        }
    return {"runtime": f"PyTorch eager on {device}", "networks": result}


def accelerated_runtimes() -> dict:
    """Whether TensorRT and ONNX Runtime's GPU providers exist on this machine's image."""
    found: dict = {"tensorrt": importlib.util.find_spec("tensorrt") is not None}
    try:
        import onnxruntime

        found["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        found["onnxruntime_providers"] = "onnxruntime missing"
    return found


def llm_tokens_per_second(config_dir: Path, device: str, new_tokens: int) -> dict:
    """Greedy decoding speed of the story LLM's architecture (its own config; random weights: the weights
    change no arithmetic) in transformers, batch 1."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(config_dir)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(device).eval()
    prompt = torch.randint(3, config.vocab_size, (1, 120), device=device)
    rates = []
    for _ in range(4):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=2
            )
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append((output.shape[1] - prompt.shape[1]) / (time.perf_counter() - started))
    rates = sorted(rates[1:])  # the first one warms up
    return {
        "runtime": f"transformers {__import__('transformers').__version__}, {dtype}, batch 1, greedy",
        "prompt_tokens": 120,
        "new_tokens": new_tokens,
        "tokens_per_s_median": round(rates[len(rates) // 2], 1),
    }


def run_step(results: Results, key: str, step, *args) -> None:
    started = time.perf_counter()
    try:
        value = step(*args)
    except Exception as error:  # a figure that cannot be taken is reported, the next step still runs
        logger.exception("%s failed", key)
        value = {"error": f"{type(error).__name__}: {error}"}
    if isinstance(value, dict):
        value["step_s"] = round(time.perf_counter() - started, 1)
    results.put(key, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu.lease", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")))
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of every network")
    parser.add_argument("--tiny", action="store_true", help="CPU rehearsal: a few hundred faces, seconds")
    parser.add_argument("--diffusion-timeout", type=float, default=150.0)
    parser.add_argument(
        "--runs", type=parse_runs, default=RUNS, help="networks to train, arch:seed,... (default: %(default)s)"
    )
    parser.add_argument(
        "--training-only", action="store_true", help="a later lease: train and pack, skip the figures taken before"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results(args.out / "results.json")
    results.put("machine", machine())
    work = Path("/tmp/kiosk-lease")
    shutil.rmtree(work, ignore_errors=True)
    (work / "runs").mkdir(parents=True)

    from gpu.pack_faces import unpack

    train_npz = unpack(CARRY / "fer-training", work / "fer-training.npz")
    device = "cpu" if args.tiny else "cuda"
    extra = ["--limit", "300", "--epochs", "2", "--batch-size", "32", "--threads", "1"] if args.tiny else []
    extra += [] if args.tiny else ["--epochs", "400"]
    run_step(results, "training", train_side_by_side, train_npz, work / "runs", args.minutes, device, extra, args.runs)
    results.put("checkpoint_parts", pack_checkpoints(work / "runs", args.out))
    if args.training_only:
        results.put("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return 0
    run_step(results, "emotion_latency", emotion_latency, work / "runs", device)
    results.put("accelerated_runtimes", accelerated_runtimes())
    run_step(results, "llm", llm_tokens_per_second, CARRY / "smollm2-135m", device, 16 if args.tiny else 256)
    command = [sys.executable, "-m", "bench.diffusion_gpu", "--repeats", "3"] + (["--tiny"] if args.tiny else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.diffusion_timeout)
        tail = done.stdout[done.stdout.find("{") :] if "{" in done.stdout else ""
        results.put("diffusion", json.loads(tail) if done.returncode == 0 else {"error": done.stderr[-2000:]})
    except subprocess.TimeoutExpired:
        results.put("diffusion", {"error": f"did not finish in {args.diffusion_timeout:.0f} s"})
    results.put("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
