"""A second backbone's maps fused into the default's (issue 19, fourteenth round): offline Lite2 and Lite0.

    python benchmarks/detect_backbones.py --cache .cache/lab --second .cache/lab_lite0 \
        --piles synthetic,ksdd,dagm,edge,inside,tile,strips --seeds 0,1,2 --out results/detect/backbones.csv --threads 2

Reads two caches of the detection lab (`detect_lab.extract` fills them, the second with `efficientnet_lite0`: stride-16
features of the same piles read the same way, so the two grids match). Each backbone's features go through the package's
pipeline (the discriminator off) on their own (`self` radius 2, two clean-then-rescore rounds at 0.7 with a 40,000-patch
bank); the two last joins then meet as a weighted robust z of their logs (`run._pile_maps`, Lite0 at WEIGHTS against
Lite2's 1, as the discriminator's maps join: detect_discriminator.py) before the default's normalisation, smoothing,
share and peers (the peers found on Lite2's features, the default's). Rows: pile, seed, backbones (`lite2`, the default;
`lite0` alone, its peers on its own features; `lite2+lite0`), Lite0's weight (0: one backbone alone), AUROC, AP and the
`auto` decision (ACC, MDR, FDR, flagged), and the forward pass's seconds an image of each backbone (as the caches
measured them). The lab's rules (`detect_lab.choose`) pick on the AUROC averaged over the seeds, leaving each pile (and
its family) out.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from detect_discriminator import final_scores
from detect_lab import CHOOSE_ON, cached_pile
from detect_peers import measured, parser_for, seeded_table, settings, show
from detect_rescore import rescored_raw
from lab_piles import BUILT

from steelnb.detect.run import _pile_maps

WEIGHTS = (0.5, 1.0)  # Lite0's weight in the fusion, against Lite2's 1


def pile_rows(name: str, cache: Path, seeds: list[int], second: Path) -> list[dict]:
    piles = {"lite2": cached_pile(name, cache), "lite0": cached_pile(name, second)}
    if not np.array_equal(piles["lite2"].truth, piles["lite0"].truth) or \
            piles["lite2"].features.shape[:3] != piles["lite0"].features.shape[:3]:
        raise ValueError(f"{name}: the two caches hold different piles (labels or grids differ)")
    truth = piles["lite2"].truth
    timing = {f"forward_s_{backbone}": pile.forward_s for backbone, pile in piles.items()}
    rows = []
    for seed in seeds:
        joined = {backbone: rescored_raw(pile.features.numpy(), pile.first, 0.7, 2, 40_000, seed)[1]
                  for backbone, pile in piles.items()}
        scores = {(backbone, 0.0): final_scores(_pile_maps(joined[backbone], "auto")[0], pile.looks)
                  for backbone, pile in piles.items()}
        for weight in WEIGHTS:
            fused = _pile_maps(np.stack([joined["lite2"], joined["lite0"]], 1), "auto", (1.0, weight))[0]
            scores["lite2+lite0", weight] = final_scores(fused, piles["lite2"].looks)
        rows += [{"pile": name, "seed": seed, "backbones": backbones, "lite0_weight": weight,
                  **measured(truth, value), **timing} for (backbones, weight), value in scores.items()]
        print(name, seed, {key: round(row["auroc"], 4) for key, row in zip(scores, rows[-len(scores):], strict=True)},
              flush=True)
    return rows


def main() -> None:
    parser = parser_for(__doc__, "results/detect/backbones.csv")
    parser.add_argument("--second", type=Path, default=Path(".cache/lab_lite0"), help="the cache of Lite0's features")
    args = parser.parse_args()
    table = seeded_table(args, functools.partial(pile_rows, second=args.second))
    fused = table["backbones"] + ", Lite0 weight " + table["lite0_weight"].astype(str)
    named = table.assign(setting_name=np.where(table["lite0_weight"] > 0, fused, table["backbones"]))
    show(settings(named.assign(k=0, weight=0.0), ("setting_name",)), (*CHOOSE_ON, *BUILT))


if __name__ == "__main__":
    main()
