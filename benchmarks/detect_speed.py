"""What `steelnb detect` costs beside the backbone's bare forward pass, measured side by side in one run (issue 19).

    python benchmarks/detect_speed.py --images 64 --side 512 --repeats 3 [--set rescore_patches=20000 ...]

One synthetic pile at `--side` px, read once. Each repeat times, back to back in this process, (a) the bare
forward pass of the backbone over the pile (no grad, batches of 8, features of every level the default reads) and
(b) `detect` at the defaults a user gets (features + scoring + map post-processing, from `metrics.json`'s
`prepare_s + score_s`, so decoding is left out of both). The median ratio (b) / (a) is the figure: what scoring
the pile adds to looking at it. `--set FIELD=VALUE` changes a DetectConfig field (to weigh a setting's cost).
The issue's goal: <= 1.5x, and <= 0.5 s an image at 512 px on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import faiss
import torch

from steelnb.backbones import create_backbone
from steelnb.data import synthetic
from steelnb.detect.config import DetectConfig
from steelnb.detect.run import detect
from steelnb.patches import feature_levels
from steelnb.views import to_model_input


def bare_forward_s(config: DetectConfig, images, batch: int = 8) -> float:
    """Seconds of the backbone's forward pass alone over `images`, up to the deepest level `config` reads."""
    backbone = create_backbone(config.backbone, config.weights)
    model = backbone.model.eval()
    levels = feature_levels(model, config.stride_list)
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = to_model_input(torch.as_tensor(images[start:start + batch]), backbone.mean, backbone.std)
            model.forward_intermediates(x, indices=levels, intermediates_only=True, stop_early=True)
    return time.perf_counter() - started


def detect_s(config: DetectConfig, pile) -> float:
    """Seconds `detect` spends on features and scoring (its own record, decoding left out)."""
    run = detect(config, pile).metrics["run"]
    return run["prepare_s"] + run["score_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)  # 44 clean images: a full 40k bank
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a DetectConfig field away from its default (numbers as numbers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)  # the second pass's bank search: faiss has its own OpenMP
    pile = synthetic.load(image_size=args.side, n_images=args.images, defect_rate=0.1, seed=0)
    changed = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.set)}
    with tempfile.TemporaryDirectory() as out:
        config = DetectConfig.from_dict({"device": "cpu", "overlays": 0, "out_dir": out, **changed})
        rows = [(bare_forward_s(config, pile.images), detect_s(config, pile)) for _ in range(args.repeats)]
    for repeat, (bare, full) in enumerate(rows):
        print(f"repeat {repeat}: bare forward {bare / len(pile):.3f} s an image, detect {full / len(pile):.3f} s an "
              f"image, ratio {full / bare:.2f}", flush=True)
    ratio = statistics.median(full / bare for bare, full in rows)
    per_image = statistics.median(full for _, full in rows) / len(pile)
    print(f"detect defaults (method {config.method}, strides {config.strides}, cells {config.cells}, self radius "
          f"{config.self_radius}, rescore {config.rescore} x {config.rescore_rounds} rounds, "
          f"{config.rescore_patches} patches; set: {', '.join(args.set) or 'nothing'}) on {len(pile)} synthetic "
          f"images at {args.side} px; {platform.machine()}, "
          f"{os.cpu_count()} cpu, torch threads {torch.get_num_threads()}, weights {config.weights}:"
          f"{config.backbone}; median of {args.repeats}: {per_image:.3f} s an image, {ratio:.2f}x the bare forward "
          f"pass", flush=True)


if __name__ == "__main__":
    main()
