"""The self-similarity radius, fixed or read from the pile (issue 19, ninth round), end to end, leaving each pile out.

    python benchmarks/detect_radius.py --cache .cache/lab --piles synthetic,ksdd,dagm,edge,inside,tile,strips \
        --seeds 0,1,2 --out results/detect/radius.csv

Reads the detection lab's cache (`detect_lab.py` fills it: stride-16 features). For each pile and radius of RADII,
`self` maps the pile's unwhitened features (`--self-radius R`), then the package's default runs on them as in
`detect_peers.py` (two clean-then-rescore rounds at 0.7 with a 40,000-patch bank of each seed, cells auto, sigma 1),
then peers 40 / 0.25 and the share chosen from the pile (`auto`, scoring.py). Why: a defect wider than the radius
finds its like in its own surroundings: the Severstal tiles' large defects rank best at radius 6 in the lab's first
pass, KSDD's cracks at 1, DAGM's smudges at 2 (lab_strips.csv.gz, lab.csv.gz). `auto` reads the radius from the
pile as `auto` reads the share: of RADII, the one whose first-pass image scores (cells auto, sigma 1, top 1 %) reach
farthest (scoring.farthest_reaching: the smallest on a tie). Rows: pile, seed, radius (R or `auto`), the radius
used, the first pass's AUROC and reach, AUROC, AP, the `auto` decision (ACC, MDR, FDR, flagged) and the share
chosen. The lab's rules (`detect_lab.choose`) then pick on the AUROC averaged over the seeds, leaving each pile (and
its family) out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from detect_aggregation import aggregated, tops_of
from detect_lab import CHOOSE_ON
from detect_peers import measured, parser_for, seeded_table, settings, show
from detect_rescore import pipeline, rescored_maps
from lab_piles import BUILT
from sklearn.metrics import roc_auc_score

from steelnb.detect.scorers import SelfSimilarity
from steelnb.detect.scoring import farthest_reaching

RADII = (1, 2, 6)
PEERS = (40, 0.25)  # the default's (k, weight)


def pile_rows(name: str, cache: Path, seeds: list[int]) -> list[dict]:
    levels, truth, _ = torch.load(cache / f"{name}.pt", weights_only=False)
    features = levels[16].float()
    looks = features.mean((1, 2)).numpy()
    every = SelfSimilarity().maps_at(features, RADII).numpy()  # one distance matrix a chunk for every radius
    first = {radius: np.ascontiguousarray(every[:, i]) for i, radius in enumerate(RADII)}
    first_scores = {radius: pipeline(maps)[0] for radius, maps in first.items()}
    read, first_reach = farthest_reaching(first_scores)  # the package's choice (run._first_pass)
    rows = []
    for seed in seeds:
        for radius in RADII:
            scores, share = final_scores(features, first[radius], looks, seed)
            for label in (str(radius), "auto") if radius == read else (str(radius),):
                rows.append({"pile": name, "seed": seed, "radius": label, "radius_used": radius, "k": PEERS[0],
                             "weight": PEERS[1], "first_auroc": roc_auc_score(truth, first_scores[radius]),
                             "first_reach": first_reach[radius], **measured(truth, scores), "share": share})
        print(name, seed, {row["radius"]: round(row["auroc"], 4) for row in rows if row["seed"] == seed}, flush=True)
    return rows


def final_scores(features: torch.Tensor, first: np.ndarray, looks: np.ndarray, seed: int
                 ) -> tuple[np.ndarray, float]:
    """The default's image scores after the second pass on `first` (the first pass's raw maps), peers and the
    share chosen from the pile (`detect_aggregation.aggregated`'s `auto`); and that share."""
    _, maps = rescored_maps(features.numpy(), first, 0.7, 2, 40_000, seed)
    found, share = aggregated(tops_of(maps), looks, *PEERS, maps[0].size)
    return found["auto"], share


def main() -> None:
    args = parser_for(__doc__, "results/detect/radius.csv").parse_args()
    table = seeded_table(args, pile_rows)
    show(settings(table.assign(radius="radius " + table["radius"].astype(str)), ("radius",)), (*CHOOSE_ON, *BUILT))


if __name__ == "__main__":
    main()
