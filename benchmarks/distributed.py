"""Images/s of `steelnb train` (an epoch) and `steelnb detect` on 1 and 2 processes (torchrun), as a user runs them.

    python benchmarks/distributed.py --out results/scale/distributed_cpu.txt       # ~10 minutes on 2 cores
    python benchmarks/distributed.py --device cuda --train-profile paper ...        # on a machine with GPUs

Each row is one command in a subprocess (torchrun --standalone for 2 processes): on the CPU with one thread a
process (torchrun's default), and one process with as many threads as the 2-process row has processes, which is
the fair comparison on a shared machine. Numbers come from the run's own files: history.csv (train: the last
epoch's feature extraction over all images, clustering, and training over steps x batch images) and metrics.json
(detect: preparing the references, scoring every image). On a busy machine they move by tens of percent between
runs; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], processes: int, threads: int) -> float:
    """`steelnb ARGS` on `processes` processes of `threads` threads; the wall seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    launcher = [sys.executable, "-m", "steelnb.cli"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m",
         "steelnb.cli"]
    started = time.perf_counter()
    done = subprocess.run([*launcher, *args, "--quiet"], env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    return time.perf_counter() - started


def train_row(out: Path, args: argparse.Namespace, processes: int, threads: int) -> dict:
    wall = run(["train", "--profile", args.train_profile, "--max-per-class", str(args.max_per_class), "--epochs", "2",
                "--device", args.device, "--out-dir", str(out), "--overwrite"], processes, threads)
    last = pd.read_csv(out / "history.csv").iloc[-1]
    config, metrics = (json.loads((out / name).read_text()) for name in ("config.json", "metrics.json"))
    n = metrics["n_images"]
    trained = (config["steps_per_epoch"] or n // config["batch_size"]) * config["batch_size"]
    epoch_s = last.extract_s + last.cluster_s + last.train_s
    return {"command": "train", "processes": processes, "threads": threads, "images": n,
            "extract img/s": n / last.extract_s, "cluster s": last.cluster_s, "train img/s": trained / last.train_s,
            "epoch img/s": n / epoch_s, "wall s": wall}


def detect_row(out: Path, args: argparse.Namespace, processes: int, threads: int) -> dict:
    wall = run(["detect", "--dataset", "synthetic", "--max-side", str(args.detect_side), "--backbone", "resnet18",
                "--weights", "random", "--method", "bank", "--bank-images", "32", "--overlays", "0",
                "--device", args.device, "--out-dir", str(out), "--overwrite"], processes, threads)
    metrics = json.loads((out / "metrics.json").read_text())
    n, seconds = metrics["n_images"], metrics["run"]
    return {"command": "detect", "processes": processes, "threads": threads, "images": n,
            "prepare s": seconds["prepare_s"], "score img/s": n / seconds["score_s"],
            "detect img/s": n / (seconds["prepare_s"] + seconds["score_s"]), "wall s": wall}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    import torch

    gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "no GPU"
    return f"{model}, {os.cpu_count()} cpu, {gpus}; torch {torch.__version__}; commit {commit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-profile", default="ci")
    parser.add_argument("--max-per-class", type=int, default=40, help="synthetic images a class for train")
    parser.add_argument("--detect-side", type=int, default=128, help="detect's --max-side (synthetic, 600 images)")
    parser.add_argument("--out", type=Path, help="also write the tables here")
    args = parser.parse_args()

    lines = [f"machine: {machine()}", f"load average at start: {os.getloadavg()[0]:.1f}",
             f"train: --profile {args.train_profile} --max-per-class {args.max_per_class}, synthetic, the second of "
             f"2 epochs; detect: synthetic 600 images, --max-side {args.detect_side}, bank of 32 images, resnet18",
             ""]
    print("\n".join(lines), flush=True)
    # one process with 1 thread, one with as many threads as the most processes, then the several processes
    shapes = sorted({(1, 1), (1, max(args.processes))} | {(p, 1) for p in args.processes if p > 1})
    with tempfile.TemporaryDirectory() as work:
        for name, row_of in (("train", train_row), ("detect", detect_row)):
            rows = []
            for processes, threads in shapes:
                rows.append(row_of(Path(work) / f"{name}-{processes}-{threads}", args, processes, threads))
                print(rows[-1], flush=True)
            table = pd.DataFrame(rows).round(2).to_string(index=False)
            lines += [table, ""]
            print(table, flush=True)
            shutil.rmtree(Path(work), ignore_errors=True)
            Path(work).mkdir(exist_ok=True)
    lines.append(f"load average at end: {os.getloadavg()[0]:.1f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
