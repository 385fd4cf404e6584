"""How `steelnb detect` scales with the pile: seconds per image and peak memory for piles of growing size.

Each pile is a folder of synthetic PNG strips (generated once, 500 at a time, under --work); each size runs
`steelnb detect` in a fresh process (its peak RSS from getrusage), with the decode cache off so every run
decodes its files. Prints one row per pile size and writes the table to --out (markdown).

    python benchmarks/detect_scale.py --sizes 500 2000 10000 --side 128 --method self
    python benchmarks/detect_scale.py --sizes 500 --side 512   # the issue's 500-image pile at 512 px
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from steelnb.data import synthetic

CHUNK = 500


def write_pile(folder: Path, n: int, side: int) -> Path:
    """`n` synthetic PNGs (10 % defective) of `side` px in `folder` (kept when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == n:
        return folder
    for start in range(0, n, CHUNK):
        part = synthetic.load(image_size=side, n_images=min(CHUNK, n - start), defect_rate=0.1, seed=start)
        for i, image in enumerate(part.images[:, 0]):
            Image.fromarray(image).save(folder / f"{start + i:06d}.png")
    return folder


def run_detect(folder: Path, side: int, method: str, out: Path) -> dict:
    """One `steelnb detect` in a child process: wall seconds, peak RSS (MiB), and its own timing record."""
    command = [sys.executable, "-m", "steelnb.cli", "detect", "--quiet", "--dataset", str(folder), "--max-side",
               str(side), "--method", method, "--overlays", "0", "--out-dir", str(out), "--device", "cpu"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "STEELNB_CACHE": "off"}, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; the largest child so far
    run = json.loads((out / "metrics.json").read_text())["run"]
    return {"wall_s": wall, "peak_rss_mib": peak / 1024, **run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--side", type=int, default=128, help="image side in pixels")
    parser.add_argument("--method", default="self")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "steelnb-scale")
    parser.add_argument("--out", type=Path, default=None, help="markdown table to write")
    args = parser.parse_args()
    rows = []
    for n in sorted(args.sizes):  # ascending, so that each child's peak RSS is a new maximum of RUSAGE_CHILDREN
        folder = write_pile(args.work / f"pile-{n}-{args.side}", n, args.side)
        with tempfile.TemporaryDirectory() as out:
            row = run_detect(folder, args.side, args.method, Path(out) / "run")
        row.update(n=n, images_mib=n * args.side**2 / 2**20)
        rows.append(row)
        print(f"{n:>6} images: {row['wall_s']:7.1f} s wall, {row['s_per_image']:.3f} s an image (scoring), "
              f"peak RSS {row['peak_rss_mib']:7.0f} MiB (the images alone: {row['images_mib']:.0f} MiB)", flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cpu, {platform.processor() or platform.platform()}"
    lines = [f"`steelnb detect --method {args.method} --max-side {args.side}` on synthetic piles of {args.side} px "
             f"(10 % defective), decode cache off; {machine}; weights {rows[0]['weights']}; "
             f"torch threads default; {time.strftime('%Y-%m-%d')}.", "",
             "| images | wall s | s an image (features + scoring) | peak RSS MiB | the uint8 images MiB |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['n']} | {r['wall_s']:.0f} | {r['s_per_image']:.3f} | {r['peak_rss_mib']:.0f} | "
              f"{r['images_mib']:.0f} |" for r in rows]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
