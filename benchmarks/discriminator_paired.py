"""How sure each pile's change under `--discriminator 0.5` is: a paired bootstrap of the AUROC (issue 19).

    python benchmarks/discriminator_paired.py --cache .cache/lab --piles synthetic,ksdd,dagm,edge,inside,tile,strips \
        --seeds 0,1,2 --out results/detect/discriminator_paired.csv --threads 2

For each pile and seed the default and the flag (noise 1.0, the cleanest 70 %, weight 0.5: the package's
`--discriminator 0.5`) score every image of the lab's cached features (detect_discriminator.seed_scores). Then
DRAWS resamples of the pile's images (its defective and its defect-free images each drawn with replacement, so every
resample keeps the pile's share of defects; one resample serves every seed, so the two settings and the seeds are
compared on the same images) give the change in AUROC, flag minus default, averaged over the seeds. Rows: pile, the
change on the pile as it is, the 2.5 % and 97.5 % points of the resampled changes, the share of resamples where the
flag loses, and each seed's change. The interval says how much this change depends on which of the pile's images are
counted, each image's scores held fixed: the detector is not fitted again on a resample, and the seeds' spread is not
in it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from detect_discriminator import seed_scores
from detect_lab import cached_pile
from detect_peers import parser_for, seeded_table
from sklearn.metrics import roc_auc_score

from steelnb.detect.config import DetectConfig
from steelnb.detect.discriminator import CLEAN_SHARE

DRAWS = 2000  # resamples of each pile's images
TIE = 1e-12  # a change this close to 0 is no loss (a mean of changes that cancel rounds to about 1e-17)
FLAG = (DetectConfig.discriminator_noise, CLEAN_SHARE, 0.5)  # the flag's noise, clean share and weight


def pile_rows(name: str, cache: Path, seeds: list[int]) -> list[dict]:
    pile = cached_pile(name, cache)
    noise, share, weight = FLAG
    scored = [seed_scores(pile, seed, [noise], [share]) for seed in seeds]
    pairs = [(each[0.0, 0.0, 0.0][0], each[noise, share, weight][0]) for each in scored]  # (default, flag) a seed
    row = {"pile": name, **paired_change(pile.truth, pairs, np.random.default_rng(0))}
    print(row, flush=True)
    return [row]


def paired_change(truth: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator,
                  draws: int = DRAWS) -> dict:
    """The change in AUROC from the first scores of each pair to the second, averaged over the pairs; its 2.5 % and
    97.5 % points over `draws` resamples of the images (each class drawn with replacement, one resample serving every
    pair and both its scores: paired), the share of resamples where it is below 0, and each pair's change.

    >>> truth = np.array([0, 0, 0, 1, 1])
    >>> pair = (np.array([0.1, 0.2, 0.6, 0.5, 0.9]), np.array([0.1, 0.2, 0.3, 0.5, 0.9]))
    >>> change = paired_change(truth, [pair], np.random.default_rng(0), 200)
    >>> round(change["change"], 3), change["low"] >= 0, change["share_below_0"]
    (0.167, True, 0.0)
    """
    def change(index: np.ndarray) -> list[float]:
        return [roc_auc_score(truth[index], second[index]) - roc_auc_score(truth[index], first[index])
                for first, second in pairs]

    defective, normal = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    resampled = np.array([np.mean(change(np.concatenate([rng.choice(defective, len(defective)),
                                                          rng.choice(normal, len(normal))])))
                          for _ in range(draws)])
    each = change(np.arange(len(truth)))
    return {"change": float(np.mean(each)), "low": float(np.quantile(resampled, 0.025)),
            "high": float(np.quantile(resampled, 0.975)), "share_below_0": float((resampled < -TIE).mean()),
            "seeds": " ".join(f"{value:+.4f}" for value in each)}


def main() -> None:
    args = parser_for(__doc__, "results/detect/discriminator_paired.csv").parse_args()
    pd.set_option("display.width", 200)
    print(seeded_table(args, pile_rows).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
