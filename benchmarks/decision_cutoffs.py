"""The label-free decision's light-pile rule and cutoff (issue 19, tenth, seventeenth and eighteenth rounds), chosen
leaving each pile out.

    python benchmarks/decision_cutoffs.py --data-root ../shared/datasets --cache .cache/lab --seeds 0,1,2 --threads 2 \
        --piles synthetic,ksdd,dagm,edge,inside,tile,strips,elpv_mono,elpv_poly,I,II,III,IV \
        --out results/detect/decision_cutoffs_18.csv

(decision_cutoffs_18.csv is commit b995f39's run, the discriminator on the cleanest 70 %; since the nineteenth round
the default trains it on the share the pile's estimate gives, so the same command at later commits scores the
stand-ins, the synthetic pile and the magnetic tile a little differently: decision_cutoffs_19.csv.)

Why: at the tenth round's default (no discriminator), DAGM 1's defects rank high (AUROC 0.96; the best threshold, chosen
with the labels, flags 68 and reaches ACC 0.946, MDR 0.030, FDR 0.024) but their log scores lie a median 2.1 robust
standard deviations above the pile's median, so `mad` 3 flags 9 of its 71 (MDR 0.108). The scores above the median hold
the defects and inflate `mad`'s spread; those below it are defect-free: `lower` takes the spread from them alone. The
seventeenth round chooses again on the scores of today's default, the discriminator on (results/detect/
decision_cutoffs.md).

Piles, each scored at the package's defaults: the lab's nine (`lab_piles.py`, scored from the lab's cached features as
`detect_discriminator.seed_scores` scores the default, the discriminator on, for each seed of the clean bank and the
discriminator), each again without its defective images (a pile where every flag is false; rescored, and the
discriminator trained, on that part alone), and notebook 05's four 40 % stand-ins (`decision_rules.pile_scores`: one
package run each, cached). Settings: `auto` at a cutoff C with `mad` or `lower` for the piles where it does not take
`null` (the package's default: `auto(mad) 3.5` since the seventeenth round, 3 before), `null` C alone, and `estimate`:
the top of the pile, as many images as the empirical null estimates defective (a review budget that a report could name,
not a rule of the package). Rows: pile, seed, setting, flagged, ACC, MDR, FDR, ACC gained over "everything defect-free".
Without pile P (and its family: `detect_lab.family`), `decision` chooses over the other piles, among the package's
settings, the one of the smallest largest shortfall from each pile's best gain, and it is reported on P (the best
worst-case gain, the rule until the eighteenth round, is printed to compare: flagging nothing wins it). (The tenth
round's decision_cutoffs.csv is commit 52e68f7's version of this file: the seven piles scored without the discriminator,
as `detect_radius.py` scores radius 2, cutoffs 1.5 to 3.)
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from decision_rules import pile_scores
from detect_discriminator import DEFAULT, seed_scores
from detect_lab import CHOOSE_ON, cached_pile, choose
from detect_peers import parser_for, seeded_table
from lab_piles import BUILT, HEAVY

from steelnb.detect.decision import NOISE_SPREAD, auto_rule, label_free_threshold, log_scores, null_fit, robust_spread
from steelnb.metrics import defect_scores_metrics

LAB = (*CHOOSE_ON, *BUILT)
CUTOFFS = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
SETTINGS = [*(f"auto({light}) {c:g}" for light, c in itertools.product(("mad", "lower"), CUTOFFS)),
            *(f"null {c:g}" for c in CUTOFFS), "estimate"]
PACKAGE = [s for s in SETTINGS if not s.startswith("auto(lower)") and s != "estimate"]  # the rules decision.py has


def lower_threshold(scores: np.ndarray, cutoff: float) -> float:
    """exp(median + `cutoff` x the robust spread of the log scores strictly below the median, reflected about it):
    `mad` (decision.py) with the spread taken below the median alone (without `mad`'s guard for a score lying on
    the threshold, which a benchmark of flag counts can do without).

    >>> rng = np.random.default_rng(0)
    >>> scores = np.exp(np.r_[rng.normal(0, 0.1, 880), rng.normal(0.3, 0.1, 120)])  # defects 3 spreads up
    >>> int((scores > lower_threshold(scores, 2)).sum()), int((scores > label_free_threshold(scores, "mad", 2)).sum())
    (97, 84)
    """
    logs = log_scores(scores)
    median = float(np.median(logs))
    below = logs[logs < median]
    spread = robust_spread(np.r_[below, 2 * median - below])[1] if below.size else 0.0
    return float(np.exp(median + cutoff * max(spread, NOISE_SPREAD)))


def threshold(scores: np.ndarray, setting: str) -> float:
    """The threshold of `setting` on the pile's scores: "auto(<light rule>) C", "<rule> C" (a package rule or
    `lower`) or "estimate"."""
    if setting == "estimate":  # the top of the pile, as many as the empirical null estimates defective
        return label_free_threshold(scores, "top", round(null_fit(scores).defective_share * len(scores)))
    name, cutoff = setting.split()
    if name.startswith("auto("):
        name = "null" if auto_rule(scores, float(cutoff)) == "null" else name[5:-1]
    if name == "lower":
        return lower_threshold(scores, float(cutoff))
    return label_free_threshold(scores, name, float(cutoff))


def rows_of(pile: str, seed: int, scores: np.ndarray, truth: np.ndarray) -> list[dict]:
    """One row per setting on one pile's scores."""
    rows = []
    for setting in SETTINGS:
        cut = threshold(scores, setting)
        found = defect_scores_metrics(truth, scores, cut)
        rows.append({"pile": pile, "seed": seed, "setting": setting, "flagged": int((scores > cut).sum()),
                     "acc": found["acc"], "mdr": found["mdr"], "fdr": found["fdr"],
                     "gain": found["acc"] - float(np.mean(truth == 0))})
    return rows


def lab_rows(name: str, cache: Path, seeds: list[int]) -> list[dict]:
    """Rows of lab pile `name` and of its defect-free part at the package's default, each seed."""
    pile = cached_pile(name, cache)
    noise, share, weight = DEFAULT
    parts = ((name, pile), (f"{name}-clean", pile.part(pile.truth == 0)))
    rows = []
    for seed, (label, scored) in itertools.product(seeds, parts):
        scores = seed_scores(scored, seed, [noise], [share])[noise, share, weight][0]
        rows += rows_of(label, seed, scores, scored.truth)
        print(label, seed, {r["setting"]: r["flagged"] for r in rows[-len(SETTINGS):]}, flush=True)
    return rows


def decision(mean: pd.DataFrame, piles: tuple[str, ...]) -> pd.DataFrame:
    """The package's decision, leaving each pile out: the smallest largest shortfall from each pile's best ACC gain
    (`detect_lab.choose`'s `regret`) among the settings the package has. (`worst` cannot choose here: a pile's
    defect-free part gains at most 0, and 0 only where nothing is flagged there, so the worst case rewards flagging
    less on the worst-off part, up to flagging nothing: along a grid of cutoffs it drifts to the top.)

    >>> gains = {"dagm": [0.08, 0.03, 0.09], "dagm-clean": [-0.02, -0.001, -0.01], "ksdd": [0.05, 0.01, 0.06]}
    >>> mean = pd.DataFrame([{"pile": pile, "setting": setting, "gain": gain} for pile, row in gains.items()
    ...                      for setting, gain in zip(["auto(mad) 3", "auto(mad) 5", "auto(lower) 3"], row)])
    >>> worst = choose(mean, tuple(gains), value="gain")  # the highest cutoff, flagging least on dagm-clean
    >>> decision(mean, tuple(gains)).chosen_without_it.iloc[-1], worst.chosen_without_it.iloc[-1]
    ('auto(mad) 3', 'auto(mad) 5')
    """
    return choose(mean[mean.setting.isin(PACKAGE)], piles, "regret", value="gain")


def main() -> None:
    parser = parser_for(__doc__, "results/detect/decision_cutoffs_18.csv")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--decision-cache", type=Path, default=Path(".cache/decision"),
                        help="the stand-ins' scores (decision_rules.pile_scores, through score_cache.py)")
    parser.set_defaults(piles=",".join([*LAB, *HEAVY]))
    args = parser.parse_args()

    def rows(name: str, cache: Path, seeds: list[int]) -> list[dict]:
        if name in HEAVY:
            return rows_of(name, 0, *pile_scores(name, args.data_root, args.decision_cache))
        return lab_rows(name, cache, seeds)

    table = seeded_table(args, rows)
    mean = table.groupby(["pile", "setting"], as_index=False)[["flagged", "acc", "mdr", "fdr", "gain"]].mean()
    piles = tuple(mean.pile.unique())
    pd.set_option("display.width", 250)
    print(mean.pivot(index="setting", columns="pile", values="gain").round(3).to_string())
    for rule in ("worst", "regret"):
        chosen = choose(mean, piles, rule, value="gain")
        print(f"rule: {rule}", chosen.round(4).to_string(index=False), sep="\n")
    print("the decision (regret, the package's rules):", decision(mean, piles).round(4).to_string(index=False),
          sep="\n")


if __name__ == "__main__":
    main()
