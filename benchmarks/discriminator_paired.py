"""How sure each pile's change under `--discriminator 0.5` is: a paired bootstrap of the AUROC (issue 19).

    python benchmarks/discriminator_paired.py --cache .cache/lab --piles synthetic,ksdd,dagm,edge,inside,tile,strips \
        --seeds 0,1,2 --out results/detect/discriminator_paired.csv --threads 2   # add --epochs 12 to redo that CSV
    (the same, --pair rule and the nine piles with I,II,III,IV --out results/detect/discriminator_paired_rule.csv:
    the nineteenth round; --pair rule --defective 0.4 and the six real piles --out
    results/detect/discriminator_thinned.csv: the real piles thinned to 40 % defective, after it)

For each pile and seed the discriminator off (the default until the fifteenth round) and on (noise 1.0, weight 0.5:
detect_discriminator.DEFAULT, the package's `--discriminator 0.5`, the default since; `the flag` here) score every image
of the lab's cached features (detect_discriminator.seed_scores). Then DRAWS resamples of the pile's images (its
defective and its defect-free images each drawn with replacement, so every resample keeps the pile's share of defects;
one resample serves every seed, so the two settings and the seeds are compared on the same images) give the change in
AUROC, flag minus off, averaged over the seeds. Rows: pile, the passes (`epochs`), each setting's mean AUROC over the
seeds (`off`, `flag`), the change on the pile as it is, the 2.5 % and 97.5 % points of the resampled changes, the share
of resamples where the flag loses, and each seed's change. The interval says how much this change depends on which of
the pile's images are counted, each image's scores held fixed: the detector is not fitted again on a resample, and the
seeds' spread is not in it.

Then `pair_choice` picks between the two under the rule the fifteenth round adopted (results/detect/heldout.md), leaving
each pile out: the better worst case, where a worst case within the paired interval is a tie, broken by the mean.

    python -c "import discriminator_paired as d; print(d.lab_choice('../results/detect/discriminator_paired.csv', \
        d.CHOOSE_ON + ('tile', 'strips'), '../results/detect/discriminator_clean.csv'))"   # in benchmarks/: 15th round
    python -c "import discriminator_paired as d; print(d.lab_choice('../results/detect/discriminator_paired_6.csv'))"

`--epochs` trains the flag's discriminator for fewer or more passes than the package's EPOCHS (the sixteenth round,
discriminator.md: 6, now EPOCHS). `--pair rule` sets the nineteenth round's two settings side by side instead: the
discriminator trained on the cleanest 70 % (`default`, as it was) and on the share the pile's own estimate gives
(`rule`, the default since). Until that round the flag trained on 70 %: the CSVs above were written so, and the flag now
scores the synthetic pile and the magnetic tile a little differently (discriminator.md). `--defective S` thins each pile
to the defective share S first (`CachedPile.thinned`: every defective image kept, the defect-free ones drawn at random,
seed 0), and the rows then give its images and defective share. Every row also gives each setting's decision (`auto` at
the package's cutoff), ACC and MDR, mean of the seeds, and for the setting whose share the pile's estimate gives, that
estimate at each seed.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from detect_discriminator import DEFAULT, ESTIMATED, FIXED, seed_scores, setting_name, setting_names
from detect_lab import CHOOSE_ON, cached_pile, family
from detect_peers import measured, parser_for, seeded_table
from lab_piles import BUILT
from sklearn.metrics import roc_auc_score

from steelnb.detect.discriminator import EPOCHS

DRAWS = 2000  # resamples of each pile's images
TIE = 1e-12  # a change this close to 0 is no loss (a mean of changes that cancel rounds to about 1e-17)
# `--pair`: the two settings compared, each named as the table's columns name it, the one kept on a tie first; `rule`
# is the nineteenth round's: the default of its day (70 %) against the share the pile's estimate gives (default since)
PAIRS = {"flag": (("off", (0.0, 0.0, 0.0)), ("flag", DEFAULT)), "rule": (("default", FIXED), ("rule", DEFAULT))}


def pile_rows(name: str, cache: Path, seeds: list[int], epochs: float = EPOCHS, pair: str = "flag",
              defective: float | None = None) -> list[dict]:
    pile = cached_pile(name, cache) if defective is None else cached_pile(name, cache).thinned(defective)
    settings = PAIRS[pair]
    shares = [setting[1] for _, setting in settings if setting[2] > 0]  # "off" trains no discriminator
    scored = [seed_scores(pile, seed, [DEFAULT[0]], shares, epochs) for seed in seeds]
    pairs = [tuple(each[setting].scores for _, setting in settings) for each in scored]  # (first, second) a seed
    means = {named: float(np.mean([roc_auc_score(pile.truth, pair[i]) for pair in pairs]))
             for i, (named, _) in enumerate(settings)}
    decided = {f"{named}_{column}": float(np.mean([measured(pile.truth, pair[i])[column] for pair in pairs]))
               for i, (named, _) in enumerate(settings) for column in ("acc", "mdr")}
    estimates = {f"{named}_estimates": " ".join(f"{each[setting].estimate:.3f}" for each in scored)
                 for named, setting in settings if setting[1] == ESTIMATED}  # each seed's, nan under AUTO_MIN
    row = {"pile": name, "images": len(pile.truth), "defective": float(pile.truth.mean()), "epochs": epochs, **means,
           **paired_change(pile.truth, pairs, np.random.default_rng(0)), **decided, **estimates}
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


def pair_choice(auroc: pd.DataFrame, paired: pd.DataFrame) -> pd.DataFrame:
    """Leave each pile of `auroc` (index: pile, two columns of AUROC: the setting kept on a tie, such as `off`, then
    the other, such as `flag`) out with its family: the setting chosen over the rest ("" where no other pile is left),
    and its AUROC on the pile; last, the choice over every pile. The choice is the better worst case over the piles,
    unless the change (second minus first) on each setting's worst pile (every pile at its minimum) has a `paired`
    interval (index: pile, columns `low`, `high`) that holds 0 (within TIE): then the worst cases tie, and the better
    mean decides (a tie there keeps the first).

    >>> auroc = pd.DataFrame({"off": [0.78, 0.96, 0.95], "flag": [0.77, 0.99, 0.95]}, index=["strips", "dagm", "ksdd"])
    >>> paired = pd.DataFrame({"low": [-0.03, 0.02, -0.004], "high": [0.02, 0.04, 0.01]}, index=auroc.index)
    >>> pair_choice(auroc, paired)["chosen_without_it"].tolist()
    ['flag', 'off', 'flag', 'flag']
    """
    if auroc.isna().any().any() or paired.reindex(auroc.index)[["low", "high"]].isna().any().any():
        raise ValueError("every pile needs both settings' AUROC and the change's interval")
    rows = []
    for pile in auroc.index:
        chosen = _pair_chosen(auroc, paired, [other for other in auroc.index if family(other) != family(pile)])
        rows.append({"pile": pile, "chosen_without_it": chosen, "auroc": auroc.at[pile, chosen] if chosen else np.nan})
    rows.append({"pile": "all", "chosen_without_it": _pair_chosen(auroc, paired, list(auroc.index)), "auroc": np.nan})
    return pd.DataFrame(rows)


def _pair_chosen(auroc: pd.DataFrame, paired: pd.DataFrame, over: list[str]) -> str:
    """The column of `auroc` that `pair_choice` picks over the piles `over` ("" for none)."""
    if not over:
        return ""
    chosen = auroc.loc[over]
    worst_piles = {pile for setting in chosen for pile in chosen.index[chosen[setting] == chosen[setting].min()]}
    tie = all(paired.at[pile, "low"] <= TIE and paired.at[pile, "high"] >= -TIE for pile in worst_piles)
    first, second = chosen.mean() if tie else chosen.min()
    return chosen.columns[1] if second > first else chosen.columns[0]


def lab_choice(paired_csv: str, piles: tuple[str, ...] = (*CHOOSE_ON, *BUILT), discriminator_csv: str | None = None
               ) -> pd.DataFrame:
    """`pair_choice` over `piles` from this benchmark's table: the changes and each setting's mean AUROC (the columns
    its pair names, PAIRS), or, for a table of the flag written before it had them, the means of a
    `detect_discriminator.py` table's seeds."""
    paired = pd.read_csv(paired_csv).set_index("pile")
    if not paired.index.is_unique:
        raise ValueError(f"{paired_csv} holds a pile twice: one run (one --epochs) a table")
    if discriminator_csv is None:
        names = next(([named for named, _ in pair] for pair in PAIRS.values() if {named for named, _ in pair} <=
                      set(paired.columns)), None)
        if names is None:
            raise ValueError(f"{paired_csv} holds neither pair's columns: {sorted(paired.columns)}")
        return pair_choice(paired.loc[list(piles), names], paired)
    table = pd.read_csv(discriminator_csv)
    names = setting_names(table)
    mean = {name: table[names == setting].groupby("pile")["auroc"].mean() for name, setting in
            (("off", "off"), ("flag", setting_name(*FIXED)))}  # such tables are older than the nineteenth round
    return pair_choice(pd.DataFrame(mean).loc[list(piles)], paired)


def main() -> None:
    parser = parser_for(__doc__, "results/detect/discriminator_paired.csv")
    parser.add_argument("--epochs", type=float, default=EPOCHS, help="the discriminator's passes over its patches")
    parser.add_argument("--pair", choices=PAIRS, default="flag",
                        help="flag: the discriminator off against the default; rule: the default against the share "
                             "the pile's own estimate gives (discriminator.clean_share)")
    parser.add_argument("--defective", type=float, default=None,
                        help="each pile thinned to this defective share first: its defect-free images drawn at random")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    table = seeded_table(args, functools.partial(pile_rows, epochs=args.epochs, pair=args.pair,
                                                 defective=args.defective))
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
