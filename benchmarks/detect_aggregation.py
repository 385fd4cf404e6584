"""The image score at several scales (issue 19, sixth round): the mean of the top 1 % of a map's cells, or of
another share, or the geometric mean over several shares, leaving each pile out.

    python benchmarks/detect_aggregation.py --cache .cache/lab --out results/detect/aggregation.csv --seeds 0,1,2
    python benchmarks/detect_aggregation.py --cache .cache/lab --piles tile --seeds 0,1,2 \
        --out results/detect/aggregation_tile.csv --with results/detect/aggregation.csv
    python benchmarks/detect_aggregation.py --cache .cache/lab --piles strips --seeds 0,1,2 \
        --out results/detect/aggregation_strips.csv \
        --with results/detect/aggregation.csv,results/detect/aggregation_tile.csv

Reads the detection lab's cache (`detect_lab.py` fills it). For each pile, features (the default's and
`--whiten 0.95`'s) and seed of the clean bank, the package's default runs on the cached features as in
`detect_peers.py`; its final maps (cells auto, sigma 1) are then scored by each aggregation in AGGREGATIONS and by
`auto`, the package's `--top-share 0` (the share chosen from the pile by how far its top tenth reaches: scoring.py),
each with every peers setting in PEERS. Why: at top 1 %, KSDD's defects (long thin cracks in 32 x 12 cells) and DAGM's
(compact smudges in 32 x 32) want opposite shares; a mean over several shares is the hedge that MuSc's several
aggregation sizes suggest, a share chosen from the pile the alternative. The piles a script builds (lab_piles.BUILT:
`tile`, the magnetic-tile set, benchmarks/magnetic_tile.py; `strips`, the Severstal sample cut into tiles,
benchmarks/severstal_tiles.py; since the sixteenth round also the ELPV piles, benchmarks/elpv.py; the lab's cache then
needs their features, `detect_lab.py --piles tile,strips`) are chosen over as well when their tables are given
(`--with`). Rows: pile, features, seed, aggregation, k, weight, AUROC, AP, the `auto` decision, the share `auto` chose
(its rows only) and the images flagged when the pile's defect-free part alone is scored and decided so (its maps from
the whole pile's passes; every flag a false one). The lab's rules (`detect_lab.choose`: worst case and regret) then pick
on the AUROC averaged over the seeds, leaving each pile (and the piles pasted from it) out.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from detect_lab import CHOOSE_ON
from detect_peers import default_scores, measured, parser_for, seeded_table, settings, show
from lab_piles import BUILT

from steelnb.detect.decision import label_free_threshold
from steelnb.detect.peers import against_peers, peers_of
from steelnb.detect.scoring import AUTO_SHARES, distinct_shares, farthest_reaching, image_scores, smooth

AGGREGATIONS = {"top 0.25%": (0.0025,), "top 1%": (0.01,), "top 2%": (0.02,), "top 4%": (0.04,),
                "gm 0.5%, 4%": (0.005, 0.04), "gm 1%, 4%": (0.01, 0.04), "gm 0.25%, 8%": (0.0025, 0.08),
                "gm 0.5-2%": (0.005, 0.01, 0.02),
                "gm 0.25-4%": (0.0025, 0.005, 0.01, 0.02, 0.04), "gm 0.25-8%": (0.0025, 0.005, 0.01, 0.02, 0.04, 0.08)}
PEERS = ((0, 0.0), (10, 0.25), (40, 0.25), (40, 0.5))  # (k, weight); 0: no peers


def aggregated(tops: dict[float, np.ndarray], looks: np.ndarray, k: int, weight: float, cells: int
               ) -> tuple[dict[str, np.ndarray], float]:
    """Image scores of every aggregation (`tops`: share -> the top-share means of maps of `cells` cells), then peers
    (k 0: none); `auto`: the package's `--top-share 0`, the share of AUTO_SHARES whose peered scores reach farthest
    (scoring.py); and the share `auto` chose."""
    peers = peers_of(looks, k) if k else None  # one search for every aggregation's scores
    peered = (lambda scores: against_peers(scores, peers, weight)) if k else (lambda scores: scores)
    found = {label: peered(np.exp(np.mean([np.log(tops[share]) for share in shares], axis=0)))
             for label, shares in AGGREGATIONS.items()}
    candidates = {share: peered(tops[share]) for share in distinct_shares(cells)}
    share = farthest_reaching(candidates)[0]
    found["auto"] = candidates[share]
    return found, share


def pile_rows(name: str, cache: Path, seeds: list[int]) -> list[dict]:
    rows = []
    for whiten, seed in itertools.product((False, True), seeds):
        _, maps, looks, truth = default_scores(name, cache, whiten, seed)
        tops = tops_of(maps)
        clean = truth == 0  # the same scoring on the defect-free images alone: every flag there is a false one
        for k, weight in PEERS:
            found, share = aggregated(tops, looks, k, weight, maps[0].size)
            found_clean, _ = aggregated({s: top[clean] for s, top in tops.items()}, looks[clean], k, weight,
                                        maps[0].size)
            for label, scores in found.items():
                rows.append({"pile": name, "features": "whiten 0.95" if whiten else "default", "seed": seed,
                             "aggregation": label, "k": k, "weight": weight, **measured(truth, scores),
                             "share": share if label == "auto" else np.nan,
                             "flagged_defect_free": flagged(found_clean[label])})
        print(name, "whitened" if whiten else "default", seed, flush=True)
    return rows


def tops_of(maps: np.ndarray) -> dict[float, np.ndarray]:
    """The mean of each share's top cells (every share `auto` or an aggregation reads) of the normalised `maps`,
    smoothed by sigma 1 as the default smooths them."""
    smoothed = smooth(torch.from_numpy(maps).float(), 1.0)
    return {share: image_scores(smoothed, sigma=0, top_share=share)
            for share in {*AUTO_SHARES, *itertools.chain(*AGGREGATIONS.values())}}


def flagged(scores: np.ndarray) -> int:
    """How many of `scores` the default decision (`auto` at decision.CUTOFF: 3 until the seventeenth round) flags."""
    return int((scores > label_free_threshold(scores, "auto")).sum())


def main() -> None:
    parser = parser_for(__doc__, "results/detect/aggregation.csv")
    parser.add_argument("--with", dest="earlier", default="", help="tables of earlier runs of this benchmark (other "
                        "piles, e.g. a fetched one), comma-separated: chosen over together with this run's")
    args = parser.parse_args()
    table = seeded_table(args, pile_rows)
    show(settings(pd.concat([table, *(pd.read_csv(path) for path in args.earlier.split(",") if path)]),
                  ("features", "aggregation")),
         (*CHOOSE_ON, *BUILT))


if __name__ == "__main__":
    main()
