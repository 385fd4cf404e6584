"""The label-free decision on piles with few and with many defects (issue 19): `mad`, `null`, `auto`, and `mad`
switched to `null` where the empirical null estimates a large defective share, chosen leaving one pile out.

    python benchmarks/decision_rules.py --data-root ../shared/datasets --out results/detect/decision_rules.csv

Piles, each scored once by `steelnb detect` at its defaults (scores cached in --cache): the lab's (`lab_piles.py`:
synthetic at 256 px, KSDD, DAGM 1, edge, inside; 12-20 % defective), each again with its defective images left out (a
pile where every flag is false), and notebook 05's stand-ins for Severstal sets I-IV (`study_set`, profile cpu: 300
defect-free + 200 of one synthetic defect type, 40 % defective, 200 px). Rules on each pile's scores: `mad` and `null`
at cutoffs 3, `auto` 3 (the package's default of its round: `decision.auto_rule`; 3.5 since the seventeenth), and
`switch S`: `null` 3 where `null_fit` estimates a defective share >= S, else `mad` 3 (auto without its guards, to choose
S). Rows: pile, rule, flagged, ACC, MDR, FDR, ACC gained over "everything defect-free", the estimated share. Without
pile P, the rule of the best worst-case gain over the other piles is chosen (ties: the best mean gain) and reported on
P; the rules tied with it are named. Run it from the repository root (the paths above are relative to it).
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lab_piles import HEAVY, load_pile
from score_cache import cached

from steelnb.detect import DetectConfig
from steelnb.detect.decision import label_free_threshold, null_fit
from steelnb.inspection import detect_pile
from steelnb.metrics import defect_scores_metrics

LAB = ("synthetic", "ksdd", "dagm", "edge", "inside")
SWITCHES = (0.2, 0.25, 0.3, 1 / 3, 0.35, 0.4, 0.45)


def pile_scores(name: str, data_root: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(scores, defect flags) of pile `name` (`<lab pile>`, `<lab pile>-clean` or a stand-in `I`..`IV`), detected
    at the defaults once: kept in `cache` by score_cache.py (keyed by the pile, the data root and the code)."""
    def detected() -> dict[str, np.ndarray]:
        base = name.removesuffix("-clean")
        data = load_pile(base, data_root)
        if name.endswith("-clean"):
            data = data.subset(data.defective == 0, name=name)
        _, detection = detect_pile(DetectConfig(overlays=0), data)  # sides fitted to the grid, as inspect does
        return {"scores": detection.table["score"].to_numpy(), "defective": data.defective.astype(np.int64)}

    found = cached(cache, {"pile": name, "data_root": str(Path(data_root).resolve())}, detected)
    return found["scores"], found["defective"]


def rule_flags(scores: np.ndarray, rule: str) -> np.ndarray:
    """0/1 decision of `rule` ("mad 3", "null 3", "auto 3", "switch S") on the pile's scores."""
    name, value = rule.split()
    if name == "switch":
        name = "null" if null_fit(scores).defective_share >= float(value) else "mad"
    return (scores > label_free_threshold(scores, name, 3.0)).astype(np.int64)


def pile_rows(name: str, scores: np.ndarray, defective: np.ndarray) -> list[dict]:
    """One row per rule on pile `name`."""
    rules = ["mad 3", "null 3", "auto 3", *(f"switch {s:.3f}" for s in SWITCHES)]  # "null" alone reads as NaN
    share = null_fit(scores).defective_share
    rows = []
    for rule in rules:
        flags = rule_flags(scores, rule)
        found = defect_scores_metrics(defective, flags, threshold=0.5)
        rows.append({"pile": name, "rule": rule, "flagged": int(flags.sum()), "acc": found["acc"],
                     "mdr": found["mdr"], "fdr": found["fdr"], "gain": found["acc"] - float(np.mean(defective == 0)),
                     "estimated_share": share, "defect_rate": float(np.mean(defective))})
    return rows


def choose(table: pd.DataFrame) -> pd.DataFrame:
    """For each pile P: the rule of the best worst-case gain over the other piles, ties broken by the mean gain
    over them (the lab's rule, detect_lab.choose, on the decision), its row on P, and every rule tied with it."""
    rows = []
    for pile in table.pile.unique():
        others = table[table.pile != pile].groupby("rule").gain.agg(["min", "mean"]).round(6)
        best = others.sort_values(["min", "mean"], ascending=False).iloc[0]
        tied = others[(others["min"] == best["min"]) & (others["mean"] == best["mean"])].index
        row = table[(table.pile == pile) & (table.rule == best.name)].iloc[0]
        rows.append({"pile": pile, "chosen_without_it": best.name, "tied_with": ", ".join(sorted(set(tied) -
                                                                                              {best.name})),
                     **row.drop(["pile", "rule"]).to_dict()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--cache", type=Path, default=Path(".cache/decision"),
                        help="the piles' scores (score_cache.py: a change to the code scores again)")
    parser.add_argument("--out", type=Path, default=Path("results/detect/decision_rules.csv"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the machine is shared; threads are in the score cache's key (decision_cutoffs' 2 apart)
    names = [*LAB, *(f"{p}-clean" for p in LAB), *HEAVY]
    table = pd.DataFrame([row for name in names for row in pile_rows(name, *pile_scores(name, args.data_root,
                                                                                          args.cache))])
    table["machine"] = f"{platform.machine()}, {torch.get_num_threads()} thread"
    table.to_csv(args.out, index=False, float_format="%.4f")
    print(table.pivot(index="rule", columns="pile", values="gain").round(3).to_string())
    print(table.pivot(index="rule", columns="pile", values="fdr").round(3).to_string())
    print(choose(table).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
