"""Peak memory of decoding a pile and reading it through, against the pile's size (issue 14, sets larger than memory).

    python benchmarks/decode_memory.py                       # 1k, 5k, 20k images; ~10 minutes on 2 busy cores
    python benchmarks/decode_memory.py --sizes 1000 --before /tmp/steelnb-main   # also an older checkout's decode

Synthetic grayscale JPEGs (256 x 256, each its own noise texture) are written to --files (in /tmp, never to the
repository) and decoded at --side px by `steelnb.data.decode.load_images`, each case in a fresh subprocess that
then reads every image in batches of 64 (as feature extraction does). In that subprocess a thread samples
/proc/self/status every 5 ms; reported per case:
  anon_peak_mb  peak RssAnon: memory the process owns (heap, arrays): what must fit in RAM;
  rss_peak_mb   VmHWM, the kernel's peak resident set, which also counts the cache file's pages mapped in while read
                (clean page cache, given back under memory pressure: not what bounds the pile's size);
  seconds       load_images plus the read-through.
Cases: `cold` (cache empty: decode, written row by row into the entry, then mapped), `warm` (the entry exists: mapped),
`memory` (STEELNB_CACHE=off: one array in RAM), and with --before DIR the same cold/warm with the decode.py found in
DIR (PYTHONPATH=DIR), e.g. `git archive main steelnb | tar -x -C DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent('''
    import json, sys, threading, time
    from pathlib import Path
    import numpy as np

    def status():
        fields = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("RssAnon", "VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) / 1024
        return fields

    peak = {"RssAnon": 0.0}
    running = True
    def sample():
        while running:
            peak["RssAnon"] = max(peak["RssAnon"], status()["RssAnon"])
            time.sleep(0.005)
    threading.Thread(target=sample, daemon=True).start()

    from steelnb.data import decode
    folder, n, side, cache = json.loads(sys.argv[1])
    paths = sorted(Path(folder).glob("*.jpg"))[:n]
    base = status()["RssAnon"]
    start = time.perf_counter()
    images = decode.load_images(paths, side, cache_dir=Path(cache) if cache else None, workers=4)[0]
    total = 0.0
    for first in range(0, len(images), 64):
        total += float(np.asarray(images[first:first + 64], np.float32).mean())
    seconds = time.perf_counter() - start
    running = False
    time.sleep(0.02)
    end = status()
    print(json.dumps({"anon_base_mb": base, "anon_peak_mb": max(peak["RssAnon"], end["RssAnon"]),
                      "rss_peak_mb": end["VmHWM"], "seconds": seconds, "kind": type(images).__name__,
                      "shape": list(images.shape)}))
''')


def make_files(folder: Path, n: int, size: int = 256) -> list[Path]:
    """n grayscale JPEGs of noise textures (made once, kept for later runs)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:06d}.jpg" for i in range(n)]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size * 2, size * 2), dtype=np.uint8)
    for i, path in enumerate(paths):
        if not path.exists():
            y, x = (i * 37) % size, (i * 91) % size
            texture = np.roll(base, i % 7, axis=0)[y:y + size, x:x + size]
            Image.fromarray(texture).save(path, quality=90)
    return paths


def run_case(folder: Path, n: int, side: int, cache: Path | None, pythonpath: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "STEELNB_CACHE_MAX_GB": "100"}
    if cache is None:
        env["STEELNB_CACHE"] = "off"
    argument = json.dumps([str(folder), n, side, str(cache) if cache else None])
    done = subprocess.run([sys.executable, "-c", CHILD, argument], env=env, capture_output=True, text=True,
                          check=False, cwd=pythonpath)  # -c puts the working folder first on the path
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next(line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return (f"{model}, {os.cpu_count()} cpu, {memory} RAM; load average {os.getloadavg()[0]:.1f} at start; "
            f"Python {platform.python_version()}, numpy {np.__version__}; commit {commit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--files", type=Path, default=Path("/tmp/steelnb-pile"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/steelnb-pile-cache"))
    parser.add_argument("--before", type=Path, help="a checkout whose steelnb/ to measure as well")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()

    lines = [f"machine: {machine()}", f"pile: grayscale 256 x 256 JPEGs decoded at {args.side} px "
             f"({args.side * args.side / 1e6:.3f} MB an image)", ""]
    header = f"{'images':>7} {'code':>7} {'case':>7} {'set_mb':>8} {'anon_peak_mb':>13} {'rss_peak_mb':>12} " \
             f"{'seconds':>8}  images are"
    lines.append(header)
    print("\n".join(lines), flush=True)
    make_files(args.files, max(args.sizes))
    codes = [("now", REPO)] + ([("before", args.before)] if args.before else [])
    for n in args.sizes:
        set_mb = n * args.side * args.side / 2**20
        for code, root in codes:
            cache = args.work / f"{code}-{n}"
            shutil.rmtree(cache, ignore_errors=True)
            cases = [("cold", cache), ("warm", cache)] + ([("memory", None)] if code == "now" else [])
            for case, folder in cases:
                started = time.perf_counter()
                found = run_case(args.files, n, args.side, folder, root)
                line = (f"{n:>7} {code:>7} {case:>7} {set_mb:>8.0f} {found['anon_peak_mb']:>13.0f} "
                        f"{found['rss_peak_mb']:>12.0f} {found['seconds']:>8.1f}  {found['kind']} "
                        f"{tuple(found['shape'])}")
                lines.append(line)
                print(line, f"({time.perf_counter() - started:.0f} s with start-up)", flush=True)
            shutil.rmtree(cache, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
