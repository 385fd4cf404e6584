"""A patch discriminator trained on the pile's clean images, fused into the default's maps (issue 19, rounds 11-13,
19).

    python benchmarks/detect_discriminator.py --cache .cache/lab --piles synthetic,ksdd,dagm,edge,inside,tile,strips \
        --seeds 0,1,2 --out results/detect/discriminator_clean.csv --threads 2
    (the same, --noises 1.0 --shares 0.7,0.85,1.0 --out results/detect/discriminator_share.csv: the second grid;
    --noises 1.0 --shares 0.7,estimated over the nine piles and I,II,III,IV --out results/detect/discriminator_rule.csv:
    the nineteenth round)

Reads the detection lab's cache (`detect_lab.py` fills it: stride-16 features). For each pile and seed the package's
pipeline without the discriminator (the default until the fifteenth round) runs on the cached features (`self` radius 2,
two clean-then-rescore rounds at 0.7 with a 40,000-patch bank, cells auto, sigma 1, peers 40 / 0.25, the share chosen
from the pile); then `steelnb.detect.discriminator.discriminator_maps` trains on the `--shares` of the pile that the
last join ranks most normal (cross-fitted halves, 300 steps making discriminator.EPOCHS passes over each half's sampled
patches, the batch clipped to 256-4,096, Gaussian noise `--noises` in the clean patches' units), and its maps join those
raw maps as a weighted robust z of their logs (`run._pile_maps`, weight WEIGHTS against their 1) before the default's
normalisation, smoothing, share and peers. Rows: pile, seed, noise, clean share (-1: `estimated`, the share
`discriminator.clean_share` takes from the pile, the default since the nineteenth round), weight (0: the discriminator
off), AUROC, AP and the `auto` decision (ACC, MDR, FDR, flagged), the seconds the discriminator took (when its scores
were made: a run that reads them from the score cache, score_cache.py, reports those seconds), the share it trained on
and the defective share estimated (empty where the share was given or the pile is under 100 images). The lab's rules
(`detect_lab.choose`) then pick on the AUROC averaged over the seeds, leaving each pile (and its family) out. (The
eleventh round's grid, noise 0.3 and 1.0 at a fixed batch of 4,096, is discriminator.csv, from commit 4274b4d's version
of this file; the twelfth's, 6 / 12 / 24 passes at noise 1.0, discriminator_epochs.csv, from 5e6e847's. The
discriminator trains for discriminator.EPOCHS passes: 12 when discriminator_clean.csv and _share.csv were written, 6
since commit aa7c55f, as in discriminator_default.csv.)
"""

from __future__ import annotations

import functools
import itertools
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from detect_aggregation import aggregated, tops_of
from detect_lab import CHOOSE_ON, CachedPile, cached_pile
from detect_peers import measured, parser_for, seeded_table, settings, show
from detect_radius import PEERS
from detect_rescore import pipeline, rescored_raw
from lab_piles import BUILT
from score_cache import cached

from steelnb.detect.config import DetectConfig
from steelnb.detect.discriminator import CLEAN_SHARE, EPOCHS, clean_share, discriminator_maps
from steelnb.detect.rescore import clean_images
from steelnb.detect.run import _pile_maps

WEIGHTS = (0.25, 0.5, 1.0)
ESTIMATED = -1.0  # a share setting: the share `discriminator.clean_share` takes from the pile (the nineteenth round)
# the package's noise, share and weight (`--discriminator 0.5`, the default since the fifteenth round; the share its
# pile's estimate gives since the nineteenth) and the same at the fixed 70 % of the rounds before
DEFAULT = (DetectConfig.discriminator_noise, ESTIMATED, DetectConfig.discriminator)
FIXED = (DetectConfig.discriminator_noise, CLEAN_SHARE, DetectConfig.discriminator)


class Scored(NamedTuple):
    """A setting's image scores, the seconds its discriminator trained, the share of the pile it trained on (0: off)
    and the defective share estimated for it (nan where the share was given)."""

    scores: np.ndarray
    seconds: float
    trained: float
    estimate: float


def pile_rows(name: str, cache: Path, seeds: list[int], noises: list[float], shares: list[float]) -> list[dict]:
    pile = cached_pile(name, cache)
    rows = []
    for seed in seeds:
        scored = seed_scores(pile, seed, noises, shares)
        rows += [{"pile": name, "seed": seed, "noise": noise, "share": share, "weight": weight,
                  **measured(pile.truth, each.scores), "seconds": each.seconds, "trained_share": each.trained,
                  "estimate": None if np.isnan(each.estimate) else each.estimate}
                 for (noise, share, weight), each in scored.items()]
        print(name, seed, {setting: round(row["auroc"], 4) for setting, row in zip(scored, rows[-len(scored):],
                                                                                 strict=True)}, flush=True)
    return rows


def seed_scores(pile: CachedPile, seed: int, noises: list[float], shares: list[float], epochs: float = EPOCHS
                ) -> dict[tuple[float, float, float], Scored]:
    """{(noise, share, weight): Scored} of `pile` at `seed`: the discriminator off at (0, 0, 0), then the
    discriminator trained on each share (ESTIMATED: the pile's own, `clean_share`) at each noise, joined at each weight
    of WEIGHTS, each model trained for `epochs` passes. Scored once: a run with the same pile, seed, grid and code reads
    the scores (and the seconds measured when they were made) from the score cache beside the pile's features."""
    key = {**pile.key(), "seed": int(seed), "noises": [float(noise) for noise in noises],
           "shares": [float(share) for share in shares], "epochs": float(epochs),
           "weights": [float(weight) for weight in WEIGHTS]}
    stored = cached(pile.folder, key, lambda: _packed(_scored(pile, seed, noises, shares, epochs)))
    return {tuple(setting): Scored(scores, float(seconds), float(trained), float(estimate))
            for setting, scores, seconds, trained, estimate in
            zip(stored["settings"].tolist(), stored["scores"], stored["seconds"], stored["trained"],
                stored["estimate"], strict=True)}


def _packed(scored: dict[tuple[float, float, float], Scored]) -> dict[str, np.ndarray]:
    """`seed_scores`' dictionary as the arrays the cache stores."""
    return {"settings": np.array(list(scored), np.float64), "scores": np.stack([s.scores for s in scored.values()]),
            **{field: np.array([getattr(s, field) for s in scored.values()], np.float64)
               for field in ("seconds", "trained", "estimate")}}


def _scored(pile: CachedPile, seed: int, noises: list[float], shares: list[float], epochs: float
            ) -> dict[tuple[float, float, float], Scored]:
    """`seed_scores`, computed (a share the pile's estimate gives that another setting trained on is trained once)."""
    scores, joined = rescored_raw(pile.features.numpy(), pile.first, 0.7, 2, 40_000, seed)
    scored = {(0.0, 0.0, 0.0): Scored(final_scores(pipeline(joined)[1], pile.looks), 0.0, 0.0, np.nan)}
    n, trained_maps = len(pile.truth), {}
    for noise, share in itertools.product(noises, shares):
        trained, estimate = clean_share(scores) if share == ESTIMATED else (share, np.nan)
        if (noise, trained) not in trained_maps:
            started = time.perf_counter()
            found = discriminator_maps(lambda index: pile.features[index], clean_images(scores, trained), n,
                                       np.arange(n), noise, epochs, seed)[0]
            trained_maps[noise, trained] = found, time.perf_counter() - started
        found, seconds = trained_maps[noise, trained]
        for weight in WEIGHTS:
            fused = _pile_maps(np.stack([joined, found], 1), "auto", (1.0, weight))[0]
            scored[noise, share, weight] = Scored(final_scores(fused, pile.looks), seconds, trained,
                                                  np.nan if estimate is None else estimate)
    return scored


def final_scores(maps: np.ndarray, looks: np.ndarray) -> np.ndarray:
    """The default's image scores of the pile's normalised `maps`: smoothed, peers, the share chosen (`auto`)."""
    return aggregated(tops_of(maps), looks, *PEERS, maps[0].size)[0]["auto"]


def main() -> None:
    parser = parser_for(__doc__, "results/detect/discriminator_clean.csv")
    parser.add_argument("--noises", type=_floats, default=[1.0, 2.0],
                        help="the Gaussian noise, in units of the clean patches' spread (comma-separated)")
    parser.add_argument("--shares", type=_shares, default=[0.5, 0.7],
                        help="of the pile, the images ranked most normal it trains on (comma-separated; `estimated`: "
                             "the share the pile's own estimate gives, discriminator.clean_share)")
    args = parser.parse_args()
    table = seeded_table(args, functools.partial(pile_rows, noises=args.noises, shares=args.shares))
    named = table.assign(discriminator=setting_names(table))
    show(settings(named.assign(k=0, weight=0.0), ("discriminator",)), (*CHOOSE_ON, *BUILT))


def setting_name(noise: float, share: float, weight: float) -> str:
    """How this benchmark's tables name a setting: "off" at weight 0, else its noise, share and weight.

    >>> setting_name(1, 0.7, 0.5), setting_name(0, 0, 0), setting_name(1, ESTIMATED, 0.5)
    ('noise 1.0, share 0.7, weight 0.5', 'off', 'noise 1.0, share estimated, weight 0.5')
    """
    shown = "estimated" if share == ESTIMATED else float(share)
    return f"noise {float(noise)}, share {shown}, weight {float(weight)}" if weight > 0 else "off"


def setting_names(table: pd.DataFrame) -> pd.Series:
    """`setting_name` of each row of this benchmark's table (columns noise, share, weight)."""
    return pd.Series([setting_name(*row) for row in table[["noise", "share", "weight"]].itertuples(index=False)],
                     index=table.index)


def _floats(listed: str) -> list[float]:
    return [float(value) for value in listed.split(",")]


def _shares(listed: str) -> list[float]:
    """`--shares`: numbers, or `estimated` for ESTIMATED.

    >>> _shares("0.7,estimated")
    [0.7, -1.0]
    """
    return [ESTIMATED if value == "estimated" else float(value) for value in listed.split(",")]


if __name__ == "__main__":
    main()
