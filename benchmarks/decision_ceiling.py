"""How far a label-free decision is from the best any threshold could do on the same ranking (issue 19).

    python benchmarks/decision_ceiling.py OUT_DIR RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a `steelnb detect` run folder of a labelled pile (its scores.csv has `truth`). For each: the
decision the run made (label-free), "everything defect-free", and the ceiling: the best ACC that any one
threshold on the run's scores reaches, chosen with the labels on the whole pile (so an optimistic bound, never a
decision). A ceiling under a target says the ranking, not the rule, is what falls short. Writes
OUT_DIR/decision_ceiling.csv and .md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from steelnb.study.records import environment, write_table


def ceiling(scores: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """The best ACC of `scores > t` over every threshold t (labels `truth`), and how many it flags.

    >>> ceiling(np.array([0.1, 0.2, 0.9, 0.3]), np.array([0, 0, 1, 1]))
    (1.0, 2)
    """
    ranked = np.argsort(-scores, kind="stable")
    caught = np.r_[0, np.cumsum(truth[ranked])]  # defective among the top n, n = 0..N
    flagged = np.arange(len(scores) + 1)
    distinct = np.r_[True, np.diff(scores[ranked]) != 0, True]  # a cut only between different scores
    correct = caught + (len(truth) - truth.sum()) - (flagged - caught)
    best = int(np.argmax(np.where(distinct, correct, -1)))
    return float(correct[best] / len(truth)), best


def row(run: Path) -> dict:
    table = pd.read_csv(run / "scores.csv")
    scores, truth = table["score"].to_numpy(float), table["truth"].to_numpy(int)
    best, flagged = ceiling(scores, truth)
    decided = table["defective"].to_numpy(int)
    return {"run": str(run), "images": len(table), "defective": int(truth.sum()),
            "label_free_acc": round(float((decided == truth).mean()), 4), "label_free_flagged": int(decided.sum()),
            "everything_defect_free_acc": round(float(1 - truth.mean()), 4), "ceiling_acc": round(best, 4),
            "ceiling_flagged": flagged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    table = pd.DataFrame([row(run) for run in args.runs])
    env = environment("cpu")
    caption = ("The label-free decision of each run beside the best ACC any threshold on its scores reaches (the "
               "ceiling, chosen with the labels on the whole pile: a bound, not a decision). "
               f"Commit {env['commit']}.")
    write_table(table, args.out_dir, "decision_ceiling", caption)
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
