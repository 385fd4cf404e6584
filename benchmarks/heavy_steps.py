"""Where a heavy real pile loses: the AUROC after each step of the default, on each real pile whole and thinned to a
defective share (issue 19, after the nineteenth round).

    python benchmarks/heavy_steps.py --cache .cache/lab --piles ksdd,dagm,tile,strips,elpv_mono,elpv_poly \
        --seeds 0,1,2 --threads 2 --defective 0.4 --out results/detect/heavy_steps.csv

For each pile, whole and thinned (`CachedPile.thinned`: every defect kept, defect-free images drawn at
random, seed 0), and each seed, the lab's pipeline on cached features (as `detect_discriminator.py` runs it) is scored
after each step: `first` (the first pass: `self` radius 2, cells auto, sigma 1, the share chosen from the pile),
`first+peers` (peers 40 / 0.25), `rescored` (two clean-then-rescore rounds at 0.7, 40,000 patches; no peers),
`rescored+peers`, and `default` (the discriminator joined at 0.5, on the share the pile's estimate gives). Rows: pile,
part (`whole`, `thinned`), images, defective share, seed, step, AUROC, AP, the `auto` decision and the defective share
the empirical null estimates from the step's scores (`decision.null_fit`). A measurement: which step loses most on the
thinned piles, and which step's scores let the null see their defects, say where a remedy would have to act.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from detect_aggregation import aggregated, tops_of
from detect_discriminator import DEFAULT, seed_scores
from detect_lab import CachedPile, cached_pile
from detect_peers import measured, parser_for, seeded_table
from detect_radius import PEERS
from detect_rescore import pipeline, rescored_raw

from steelnb.detect.decision import null_fit

STEPS = ("first", "first+peers", "rescored", "rescored+peers", "default")


def pile_rows(name: str, cache: Path, seeds: list[int], defective: float) -> list[dict]:
    whole = cached_pile(name, cache)
    rows = []
    for part, pile in (("whole", whole), ("thinned", whole.thinned(defective))):
        for seed in seeds:
            described = {"pile": name, "part": part, "images": len(pile.truth),
                         "defective": float(pile.truth.mean()), "seed": seed}
            rows += [{**described, "step": step, **measured(pile.truth, scores),
                      "estimate": null_fit(scores).defective_share} for step, scores in step_scores(pile, seed).items()]
            print(name, part, seed, {row["step"]: round(row["auroc"], 4) for row in rows[-len(STEPS):]}, flush=True)
    return rows


def step_scores(pile: CachedPile, seed: int) -> dict[str, np.ndarray]:
    """The image scores of `pile` after each of STEPS at `seed`."""
    joined = rescored_raw(pile.features.numpy(), pile.first, 0.7, 2, 40_000, seed)[1]
    cells = pile.first[0].size
    scores = {}
    for label, maps in (("first", pile.first), ("rescored", joined)):
        tops = tops_of(pipeline(maps)[1])
        scores[label] = aggregated(tops, pile.looks, 0, 0.0, cells)[0]["auto"]
        scores[f"{label}+peers"] = aggregated(tops, pile.looks, *PEERS, cells)[0]["auto"]
    scores["default"] = seed_scores(pile, seed, [DEFAULT[0]], [DEFAULT[1]])[DEFAULT].scores
    return {step: scores[step] for step in STEPS}


def main() -> None:
    parser = parser_for(__doc__, "results/detect/heavy_steps.csv")
    parser.add_argument("--defective", type=float, default=0.4, help="the thinned part's defective share")
    args = parser.parse_args()
    table = seeded_table(args, functools.partial(pile_rows, defective=args.defective))
    mean = table.groupby(["pile", "part", "step"], sort=False)[["auroc", "acc", "mdr"]].mean().unstack("part")
    pd.set_option("display.width", 200)
    print(mean.round(4).to_string())


if __name__ == "__main__":
    main()
