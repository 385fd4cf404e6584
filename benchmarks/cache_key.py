"""What the decode cache's key costs: one stat a file (size, mtime, inode, ctime: what `decode` uses) next to
hashing every file's bytes, both next to what a cache hit saves (decoding) and costs (loading the array).

    .venv/bin/python benchmarks/cache_key.py [NAME ...]   # NEU and DAGM under $STEELNB_DATA; well under a minute

Files are read once before timing (a warm page cache: the hash's best case; from a cold disk it pays the
reading too). Each time is the median of 3 runs; decoding runs on 1 worker.
"""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from steelnb.data import decode, load_dataset

SIZES = {"neu": 200, "dagm": 256}


def median_s(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def content_key(paths: list[Path]) -> str:
    digest = hashlib.blake2b(digest_size=20)
    for path in paths:
        digest.update(hashlib.blake2b(path.read_bytes(), digest_size=20).digest())
    return digest.hexdigest()


def measure(name: str) -> dict:
    size = SIZES[name]
    data = load_dataset(name, image_size=size)
    files = [Path(data.meta["root"]) / path for path in data.paths]
    shape = decode.resolve_shape(size, files)
    content_key(files)  # warm the page cache
    stat_s = median_s(lambda: decode._cache_key(files, shape))
    hash_s = median_s(lambda: content_key(files))
    decode_s = median_s(lambda: decode._decode_all(files, shape, workers=1), repeats=1)
    with tempfile.TemporaryDirectory() as cache:
        decode.load_images(files, size, cache_dir=Path(cache))
        hit_s = median_s(lambda: decode.load_images(files, size, cache_dir=Path(cache)))
    mb = sum(p.stat().st_size for p in files) / 1e6
    return {"set": name, "files": len(files), "MB": mb, "stat_key_s": stat_s, "hash_key_s": hash_s,
            "cache_hit_s": hit_s, "decode_s": decode_s}


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or "unknown cpu")


def main(names: list[str]) -> None:
    print(f"{platform.machine()}, {os.cpu_count()} cpu, {cpu_name()}, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; page cache warm; decode on 1 worker")
    for name in names:
        r = measure(name)
        print(f"{r['set']}: {r['files']} files, {r['MB']:.0f} MB; key by stat {r['stat_key_s'] * 1e3:.1f} ms, "
              f"by content hash (blake2b) {r['hash_key_s'] * 1e3:.1f} ms; cache hit (stat key + load) "
              f"{r['cache_hit_s'] * 1e3:.1f} ms; decode without cache {r['decode_s']:.2f} s")
        print(f"  stat key / decode = {r['stat_key_s'] / r['decode_s']:.2%}; "
              f"hash key / decode = {r['hash_key_s'] / r['decode_s']:.2%}; "
              f"hash key / cache hit = {r['hash_key_s'] / r['cache_hit_s']:.1f}x "
              f"(a hit would take {(r['cache_hit_s'] + r['hash_key_s'] - r['stat_key_s']) / r['cache_hit_s']:.1f}x "
              "as long keyed by content)")


if __name__ == "__main__":
    main(sys.argv[1:] or ["neu", "dagm"])
