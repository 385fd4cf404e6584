"""Clean-then-rescore (issue 19, after SoftPatch / InReaCh): a pile bank built only from the images the default
calls most normal, joined with the default's own-image references, for 1 or 2 rounds.

    python benchmarks/detect_rescore.py --cache .cache/lab --out results/detect/rescore.csv

Reads the detection lab's cache (`detect_lab.py` fills it: stride-16 features of each pile and the default's
`self` radius-2 maps). Round 0 is the default (`self`, cells auto, sigma 1, top 1 %). A round takes the `clean`
share of the pile that the previous round ranks lowest, samples `memory` patches of those images into two
half-banks and scores every image's patches by their distance to the nearest patch of the half its image is not
in (as `detect/scorers/bank.py`, references drawn from the clean images only). Two joins with the default's maps:
`min`, the nearest of both (a patch is normal when its like lies far off in its own image or in a clean image of
the pile: one nearest-neighbour search over both reference sets, the two distances being in the same feature
space), and `z`, the mean of both maps' robust z. A `random` draw of the same number of references (no cleaning)
says what the cleaning brings. Each setting is then scored as the package scores maps (cells auto, sigma 1, top
1 %). Rows: pile, setting, AUROC of the bank alone and of each join, seconds. A setting would become a default
only by raising the worst case over the lab's five piles (`CHOOSE_ON`), each pile reported with the setting
chosen without it.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch
from detect_lab import CHOOSE_ON, feature_set
from detect_lab import choose as lab_choose
from sklearn.metrics import roc_auc_score

from steelnb.detect.decision import label_free_threshold
from steelnb.detect.fusion import robust_z
from steelnb.detect.run import _pile_maps
from steelnb.detect.scoring import image_scores, smooth
from steelnb.metrics import defect_scores_metrics

DEFAULT_MAPS = "features=16 scorer=self radius=2"


def pipeline(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The package's steps after the scorer (cells auto, sigma 1, top 1 %): image scores and the normalised maps."""
    normalised, _, _ = _pile_maps(np.ascontiguousarray(maps, np.float32), "auto")
    smoothed = smooth(torch.from_numpy(normalised).float(), 1.0)
    return image_scores(smoothed, sigma=0, top_share=0.01), normalised


def bank_maps(features: np.ndarray, references: np.ndarray, memory: int, seed: int = 0) -> np.ndarray:
    """(N, h, w) distance of each patch to the nearest patch of the half-bank its image is not in."""
    rng = np.random.default_rng(seed)
    n, h, w, d = features.shape
    half = rng.integers(0, 2, n)
    half[references] = rng.permutation(len(references)) % 2
    per_image = max(1, memory // len(references))
    banks = []
    for side in (0, 1):
        mine = references[half[references] == side]
        patches = [rng.permutation(features[i].reshape(-1, d))[:per_image] for i in mine]
        bank = faiss.IndexFlatL2(d)
        bank.add(np.ascontiguousarray(np.concatenate(patches), np.float32))
        banks.append(bank)
    out = np.empty((n, h, w), np.float32)
    for side in (0, 1):
        for rows in np.array_split(np.flatnonzero(half == side), max(1, int((half == side).sum()) // 32)):
            squared, _ = banks[1 - side].search(np.ascontiguousarray(features[rows].reshape(-1, d), np.float32), 1)
            out[rows] = np.sqrt(np.maximum(squared[:, 0], 0)).reshape(len(rows), h, w)
    return out


def joined_scores(default: np.ndarray, default_normalised: np.ndarray, bank: np.ndarray) -> dict[str, np.ndarray]:
    """Image scores of both joins of the default's raw maps with the bank's."""
    _, bank_normalised = pipeline(bank)
    z = (robust_z(default_normalised) + robust_z(bank_normalised)) / 2
    return {"min": pipeline(np.minimum(default, bank))[0],
            "z": image_scores(smooth(torch.from_numpy(z.astype(np.float32)), 1.0), sigma=0, top_share=0.01)}


SETTINGS = [  # (references, clean share, memory, round)
    *(("clean", share, 40_000, 1) for share in (0.3, 0.5, 0.7)),
    ("clean", 0.5, 100_000, 1), ("random", 0.5, 40_000, 1),
    *(("clean", share, 40_000, 2) for share in (0.3, 0.5, 0.7)),
    *(("clean", 0.7, memory, round_) for memory in (5_000, 10_000, 20_000) for round_ in (1, 2)),  # the cost
]


def pile_rows(name: str, cache: Path, memories: set[int] | None = None) -> list[dict]:
    levels, truth, _ = torch.load(cache / f"{name}.pt", weights_only=False)
    features = feature_set(levels, "16").numpy()
    default = torch.load(cache / f"{name}_maps.pt", weights_only=False)["maps"][DEFAULT_MAPS].float().numpy()
    base, default_normalised = pipeline(default)
    rows = [{"pile": name, "setting": "default (self)", "join": "none", "auroc": roc_auc_score(truth, base)}]
    first_round: dict[tuple, np.ndarray] = {}
    for how, share, memory, round_ in SETTINGS:
        if memories and memory not in memories:
            continue
        count = int(share * len(truth))
        ranking = base if round_ == 1 else first_round[(share, memory)]
        references = np.sort(np.argsort(ranking)[:count] if how == "clean" else
                             np.random.default_rng(1).choice(len(truth), count, replace=False))
        started = time.perf_counter()
        bank = bank_maps(features, references, memory)
        label = f"{how} {share:g}, {memory // 1000}k patches, round {round_}"
        joined = joined_scores(default, default_normalised, bank)
        seconds = time.perf_counter() - started
        if how == "clean" and round_ == 1:
            first_round[(share, memory)] = joined["min"]
        bank_auroc = roc_auc_score(truth, pipeline(bank)[0])
        for join, scores in joined.items():
            rows.append({"pile": name, "setting": label, "join": join, "bank_auroc": bank_auroc,
                         "auroc": roc_auc_score(truth, scores), "seconds": seconds})
            print(rows[-1], flush=True)
    return rows


def rescored(features: np.ndarray, default: np.ndarray, share: float, rounds: int, memory: int,
             seed: int = 0) -> np.ndarray:
    """Image scores of the `min` join after `rounds` rounds (the package's `--rescore`, `--rescore-rounds`), the
    banks' halves and samples drawn with `seed`."""
    return rescored_maps(features, default, share, rounds, memory, seed)[0]


def rescored_maps(features: np.ndarray, default: np.ndarray, share: float, rounds: int, memory: int,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`rescored`'s image scores and the (N, h, w) normalised maps they were taken from (before smoothing)."""
    scores, joined = rescored_raw(features, default, share, rounds, memory, seed)
    return scores, pipeline(joined)[1]


def rescored_raw(features: np.ndarray, default: np.ndarray, share: float, rounds: int, memory: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`rescored`'s image scores and the (N, h, w) raw maps of the last join (before the pile's normalisation)."""
    scores, joined = pipeline(default)[0], default
    for _ in range(rounds):
        references = np.sort(np.argsort(scores)[:int(share * len(scores))])
        joined = np.minimum(default, bank_maps(features, references, memory, seed))
        scores = pipeline(joined)[0]
    return scores, joined


DECISIONS = (("mad", 2.0), ("mad", 2.5), ("mad", 3.0), ("mad", 3.5), ("mad", 4.0), ("null", 3.0), ("null", 4.0))


def decision_rows(name: str, cache: Path, share: float, rounds: int, memory: int = 40_000) -> list[dict]:
    """The label-free rules on the `min` join's scores of pile `name` and of its defect-free images alone (a pile
    where every flag is a false one): ACC gained over "everything defect-free", MDR, FDR, flagged."""
    levels, truth, _ = torch.load(cache / f"{name}.pt", weights_only=False)
    features = feature_set(levels, "16").numpy()
    default = torch.load(cache / f"{name}_maps.pt", weights_only=False)["maps"][DEFAULT_MAPS].float().numpy()
    rows = []
    for part, chosen in ((name, np.arange(len(truth))), (f"{name}-clean", np.flatnonzero(truth == 0))):
        scores = rescored(features[chosen], default[chosen], share, rounds, memory)
        for rule, cutoff in DECISIONS:
            found = defect_scores_metrics(truth[chosen], scores, label_free_threshold(scores, rule, cutoff))
            rows.append({"pile": part, "rule": f"{rule}{cutoff:g}", "gain": found["acc"] - (1 - truth[chosen].mean()),
                         **{k: found[k] for k in ("acc", "mdr", "fdr")},
                         "flagged": int((scores > label_free_threshold(scores, rule, cutoff)).sum())})
        print(rows[-len(DECISIONS):], flush=True)
    return rows


def choose(table: pd.DataFrame) -> pd.DataFrame:
    """The lab's leave-one-pile-out choice (`detect_lab.choose`) over the settings and their joins."""
    return lab_choose(table.assign(setting=table["setting"] + " | " + table["join"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=".cache/lab")
    parser.add_argument("--piles", default=",".join(CHOOSE_ON))
    parser.add_argument("--out", default="results/detect/rescore.csv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory", help="only the settings with these bank sizes, e.g. 10000,20000")
    parser.add_argument("--decide", metavar="SHARE,ROUNDS", help="instead: the label-free rules at this setting "
                        "(min join, 40k patches) on every pile and its defect-free part, into --out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    if args.decide:
        share, rounds = args.decide.split(",")
        rows = [row for name in args.piles.split(",") for row in
                decision_rows(name, Path(args.cache), float(share), int(rounds))]
        table = pd.DataFrame(rows)
        table.to_csv(args.out, index=False, float_format="%.4g")
        print(table.pivot_table(index="rule", columns="pile", values="gain").round(3).to_string())
        return
    memories = {int(m) for m in args.memory.split(",")} if args.memory else None
    table = pd.DataFrame([row for name in args.piles.split(",") for row in pile_rows(name, Path(args.cache), memories)])
    table["machine"] = f"{platform.machine()} {args.threads} threads"
    table.to_csv(args.out, index=False, float_format="%.4g")
    wide = table.pivot_table(index=["setting", "join"], columns="pile", values="auroc")
    wide["worst"] = wide[[p for p in CHOOSE_ON if p in wide]].min(axis=1)
    print(wide.round(3).to_string())
    print(choose(table).to_string())


if __name__ == "__main__":
    main()
