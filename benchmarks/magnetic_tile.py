"""A third real pile for the detection lab, re-created from a public repository (never committed): the magnetic-tile
surface-defect set of Huang et al. (2020), github.com/abin24/Magnetic-tile-defect-datasets.

    python benchmarks/magnetic_tile.py --mirror /work/.mirror/abin24+Magnetic-tile-defect-datasets./repo \
        --out .cache/piles/magnetic_tile

Writes every defect-free image (MT_Free, 952) into `good/` and a seeded draw of DEFECTIVE defective images (of 392,
five types) into one folder per type, so that about 12 % of the pile is defective, as in DAGM 1 and KSDD. Images
of mixed sizes (about 100-600 px a side), grey, often with the tile's edge in view; the masks (.png) are left out.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
from lab_piles import from_mirror

TYPES = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")
DEFECTIVE = 130


def build(mirror: Path, out: Path, seed: int = 0) -> dict[str, int]:
    """The pile under `out` (good/ and one folder per defect type) from the git mirror; images per folder."""
    archive = subprocess.run(["git", "--git-dir", str(mirror), "archive", "HEAD", "MT_Free", *TYPES],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        images = {m.name: m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")}
        defective = sorted(name for name in images if not name.startswith("MT_Free/"))
        chosen = np.random.default_rng(seed).choice(len(defective), DEFECTIVE, replace=False)
        wanted = sorted(name for name in images if name.startswith("MT_Free/")) + [defective[i] for i in chosen]
        counts: dict[str, int] = {}
        for name in wanted:
            kind = name.split("/")[0]
            folder = out / ("good" if kind == "MT_Free" else kind.removeprefix("MT_").lower())
            folder.mkdir(parents=True, exist_ok=True)
            (folder / Path(name).name).write_bytes(tar.extractfile(images[name]).read())
            counts[folder.name] = counts.get(folder.name, 0) + 1
    return counts


def main() -> None:
    from_mirror(__doc__, build, ".cache/piles/magnetic_tile")


if __name__ == "__main__":
    main()
