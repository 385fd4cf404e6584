"""Two real piles of solar cells for the detection lab (held out of every choice until the fifteenth round), re-created
from a public repository (never committed): the electroluminescence images of solar cells of Buerhop-Lutz et al. (2018),
github.com/zae-bayern/elpv-dataset.

    git clone --mirror https://github.com/zae-bayern/elpv-dataset /tmp/elpv.git
    python benchmarks/elpv.py --mirror /tmp/elpv.git --out .cache/piles/elpv

Writes one pile a cell type, `mono/` and `poly/`, each with `good/` (every cell its experts gave a defect
probability of 0: 588 mono, 920 poly) and `defective/` (a seeded draw of the cells they gave 1, so that 12 % of the
pile is defective, as in DAGM 1, KSDD and the magnetic tile). Cells they were unsure of (1/3, 2/3) are left out.
300 x 300 px, grey, every cell aligned to the same frame; defects are cracks and dark, inactive regions. Another
surface, camera and maker than any pile the lab had chosen on: the fifteenth round put its rule question to them
(results/detect/heldout.md); chosen on since the sixteenth (lab_piles.BUILT).

>>> defective_count(588)
80
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import numpy as np
from lab_piles import from_mirror

DATA = "src/elpv_dataset/data"
SHARE = 0.12  # defective share of each pile


def defective_count(good: int) -> int:
    """How many defective cells join `good` defect-free ones so that SHARE of the pile is defective."""
    return round(good * SHARE / (1 - SHARE))


def labels(mirror: Path) -> list[tuple[str, float, str]]:
    """(image path under DATA, defect probability, cell type) for every row of the repository's labels.csv."""
    text = subprocess.run(["git", "--git-dir", str(mirror), "show", f"HEAD:{DATA}/labels.csv"],
                          check=True, capture_output=True, text=True).stdout
    return [(name, float(probability), kind) for name, probability, kind in (line.split() for line in
                                                                             text.splitlines() if line.strip())]


def build(mirror: Path, out: Path, seed: int = 0) -> dict[str, int]:
    """The piles under `out` (mono/ and poly/, each with good/ and defective/) from the git mirror; images per
    folder. `out` must be new or empty, so that a second build never mixes with the first."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: give a new or empty folder")
    rows = labels(mirror)
    archive = subprocess.run(["git", "--git-dir", str(mirror), "archive", "HEAD", f"{DATA}/images"],
                             check=True, capture_output=True).stdout
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for kind in sorted({kind for _, _, kind in rows}):
            good = sorted(name for name, probability, each in rows if each == kind and probability == 0)
            defective = sorted(name for name, probability, each in rows if each == kind and probability == 1)
            drawn = [defective[i] for i in sorted(rng.choice(len(defective), defective_count(len(good)),
                                                             replace=False))]
            for folder, names in (("good", good), ("defective", drawn)):
                target = out / kind / folder
                target.mkdir(parents=True)
                for name in names:
                    (target / Path(name).name).write_bytes(tar.extractfile(f"{DATA}/{name}").read())
                counts[f"{kind}/{folder}"] = len(names)
    return counts


def main() -> None:
    from_mirror(__doc__, build, ".cache/piles/elpv")


if __name__ == "__main__":
    main()
