"""Peers (issue 19, fifth round): each image's score against its look-alikes' scores, leaving each pile out.

    python benchmarks/detect_peers.py --cache .cache/lab --out results/detect/peers.csv --seeds 0,1,2

Reads the detection lab's cache (`detect_lab.py` fills it: stride-16 features of each pile and the default's
`self` radius-2 maps). For each pile, features (the default's, and `--whiten 0.95`'s) and seed of the clean bank,
the package's default runs on the cached features (`self` radius 2, two clean-then-rescore rounds at 0.7 with a
40,000-patch bank, cells auto, sigma 1, top 1 %); then `steelnb.detect.peers.peer_scores` divides each image
score by the `weight`-th power of the median score of its `k` peers, the images whose mean patch feature is most
like its own. Why: DAGM 1's normal images differ in how busy their texture is, and the busy ones outrank the
quiet ones' defects. Rows: pile, features, seed, k, weight, AUROC, AP and the `auto` decision (ACC, MDR, FDR,
flagged). The lab's rule (`detect_lab.choose`) then picks on the AUROC averaged over the seeds, leaving each pile
out.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import platform
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch
from detect_lab import CHOOSE_ON, choose
from detect_rescore import DEFAULT_MAPS, rescored_maps
from sklearn.metrics import average_precision_score, roc_auc_score

from steelnb.detect.decision import label_free_threshold
from steelnb.detect.peers import peer_scores
from steelnb.detect.scorers import SelfSimilarity
from steelnb.detect.whiten import fit_whitening
from steelnb.metrics import defect_scores_metrics

AVERAGED = ("auroc", "ap", "acc", "mdr", "fdr", "flagged", "flagged_defect_free")  # the columns `settings` averages
GRID = [(0, 0.0), *itertools.product((5, 10, 20, 40, 80), (0.25, 0.5, 0.75, 1.0))]  # (k, weight); 0: no peers


def default_scores(name: str, cache: Path, whiten: bool, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The default's image scores of pile `name` (whitened first where asked), its normalised maps (before
    smoothing), its looks and its truth."""
    levels, truth, features, raw = first_pass(name, cache, whiten)
    scores, maps = rescored_maps(features.numpy(), raw, 0.7, 2, 40_000, seed)
    return scores, maps, levels[16].float().mean((1, 2)).numpy(), truth


@functools.lru_cache(maxsize=1)  # the seeds of one pile and features in turn share it
def first_pass(name: str, cache: Path, whiten: bool) -> tuple[dict, np.ndarray, torch.Tensor, np.ndarray]:
    """Pile `name`'s cached levels, truth, stride-16 features (whitened where asked) and the first pass's maps
    (`self`, radius 2: cached, or scored again on the whitened features): the same for every seed of the bank."""
    levels, truth, _ = torch.load(cache / f"{name}.pt", weights_only=False)
    features = levels[16].float()
    if not whiten:
        return levels, truth, features, torch.load(cache / f"{name}_maps.pt", weights_only=False)["maps"][
            DEFAULT_MAPS].float().numpy()
    features = fit_whitening(lambda index: features[index], np.arange(len(truth)), len(truth), 0.95, 0.0,
                             seed=0)(features)
    return levels, truth, features, SelfSimilarity(2).maps(features, np.arange(len(truth))).numpy()


def pile_rows(name: str, cache: Path, seeds: list[int]) -> list[dict]:
    rows = []
    for whiten, seed in itertools.product((False, True), seeds):
        scores, _, looks, truth = default_scores(name, cache, whiten, seed)
        for k, weight in GRID:
            adjusted = peer_scores(scores, looks, k, weight) if k else scores
            rows.append({"pile": name, "features": "whiten 0.95" if whiten else "default", "seed": seed, "k": k,
                         "weight": weight, **measured(truth, adjusted)})
        print(name, "whitened" if whiten else "default", seed, rows[-len(GRID)]["auroc"], flush=True)
    return rows


def measured(truth: np.ndarray, scores: np.ndarray) -> dict:
    """AUROC and AP of `scores` against `truth`, and the default decision's (`auto` at decision.CUTOFF: 3 until the
    seventeenth round, 3.5 since) ACC, MDR, FDR and flags: the columns every lab benchmark built on this one reports."""
    threshold = label_free_threshold(scores, "auto")
    decided = defect_scores_metrics(truth, scores, threshold)
    return {"auroc": roc_auc_score(truth, scores), "ap": average_precision_score(truth, scores),
            "acc": decided["acc"], "mdr": decided["mdr"], "fdr": decided["fdr"],
            "flagged": int((scores > threshold).sum())}


def settings(table: pd.DataFrame, named_by: tuple[str, ...] = ("features",)) -> pd.DataFrame:
    """The table averaged over seeds, one row per pile and setting (`setting`: the `named_by` columns | peers)."""
    peers = pd.Series(np.where(table["k"] > 0, "peers " + table["k"].astype(str) + ", weight "
                               + table["weight"].astype(str), "no peers"), index=table.index)
    named = table.assign(setting=table[list(named_by)].agg(" | ".join, axis=1) + " | " + peers)
    return named.groupby(["pile", "setting"], as_index=False)[[c for c in AVERAGED if c in named]].mean()


def parser_for(doc: str, out: str) -> argparse.ArgumentParser:
    """The flags of a seeded run over the lab's cache (this benchmark's, and those built on it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--cache", default=".cache/lab")
    parser.add_argument("--piles", default=",".join(CHOOSE_ON))
    parser.add_argument("--seeds", default="0", help="seeds of the clean bank, comma-separated")
    parser.add_argument("--out", default=out)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def seeded_table(args: argparse.Namespace, rows: Callable[[str, Path, list[int]], list[dict]]) -> pd.DataFrame:
    """`rows` of every pile and seed that `args` names, with the machine, written to `args.out`."""
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    table = pd.DataFrame([row for name in args.piles.split(",") for row in rows(name, Path(args.cache), seeds)])
    table["machine"] = f"{platform.machine()} {args.threads} threads"
    table.to_csv(args.out, index=False, float_format="%.4g")
    return table


def show(mean: pd.DataFrame, piles: tuple[str, ...] = CHOOSE_ON) -> None:
    """The 20 settings with the best worst case over `piles`, and the setting that each of the lab's rules chooses
    leaving each pile out; a table of none of `piles` (a pile held out of every choice) is shown whole, unchosen."""
    wide = mean.pivot(index="setting", columns="pile", values="auroc")
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 80)
    chosen_on = [p for p in piles if p in wide]
    if not chosen_on:
        print(wide.round(4).to_string())
        return
    wide["worst"] = wide[chosen_on].min(axis=1)
    print(wide.sort_values("worst", ascending=False).round(4).head(20).to_string())
    for rule in ("worst", "regret"):
        print(f"rule: {rule}", choose(mean, piles, rule).to_string(), sep="\n")


def main() -> None:
    args = parser_for(__doc__, "results/detect/peers.csv").parse_args()
    show(settings(seeded_table(args, pile_rows)))


if __name__ == "__main__":
    main()
