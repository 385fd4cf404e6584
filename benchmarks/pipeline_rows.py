"""The notebooks' detect-then-group rows at the package's current defaults, without retraining the joint method
(issue 21): notebook 04's Table 2 / Table 3 pipeline rows and Severstal smoke test, notebook 05's stability rows.

    python benchmarks/pipeline_rows.py OUT_DIR [--profile cpu] [--data-root DIR] [--only 04|05] [--kinds I II ...]

Each row is computed by the same library call as its notebook cell (`study.runs.pipeline_row`,
`pipeline_stability_rows`, `severstal_smoke`) on the same draws, split and seeds as the notebook's defaults, so
the rows stand beside the notebook's joint-method rows (which this does not rerun: their run.json says when they
were measured). Writes OUT_DIR/04_table2_pipeline, 04_table3_pipeline, 04_severstal_smoke, 05_runs and
05_stability (.csv and .md with captions) and run.json (commit, machine, wall time).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from steelnb.data import protocols
from steelnb.study import datasets, records, runs, tables

EXPERIMENTS = ("I", "II", "III", "IV", "V")


def notebook_04(out: Path, profile: str, data_root: str | None, seed: int = 0, split_seed: int = 0,
                test_fraction: float = 0.5) -> list[str]:
    """Notebook 04's cell 4 (pipeline rows on the test part of each stand-in set) and cell 9 (Severstal smoke)."""
    sets = datasets.stand_in_sets(data_root, profile, kinds=("2-cluster", "5-cluster"), seed=seed)
    weights = []
    for kind, study in sets.items():
        _, test = protocols.stratified_split(study.data, test_fraction, split_seed)
        given = [None] if study.labels == "defect" else [study.data.n_classes - 1, None]
        table = pd.DataFrame([runs.pipeline_row(profile, test, study.labels, seed, types=k) for k in given])
        number, name = (2, "two") if kind == "2-cluster" else (3, "five")
        records.write_table(table, out, f"04_table{number}_pipeline",
                            f"Notebook 04, Table {number} ({kind}, {name} clusters): the '{runs.PIPELINE}' rows only, "
                            f"test part of a stratified {test_fraction:.0%} split (split seed {split_seed}), profile "
                            f"{profile}, seed {seed}. Data: {study.note}.")
        weights += list(table.weights)
    smoke, absent = runs.severstal_smoke(profile, data_root, seed)
    if smoke is None:
        print(f"Severstal smoke test not run: {absent}")
    else:
        records.write_table(smoke, out, "04_severstal_smoke",
                            f"Notebook 04's smoke test (NOT the paper's protocol): {runs.PIPELINE} on every image of "
                            f"the Severstal sample, types chosen from the data; profile {profile}, seed {seed}.")
        weights += list(smoke.weights)
    return weights


def notebook_05(out: Path, profile: str, data_root: str | None, kinds: list[str]) -> list[str]:
    """Notebook 05's detect-then-group rows (`pipeline_stability_rows`) and their mean ± std."""
    rows = pd.concat([runs.pipeline_stability_rows(kind, data_root, profile) for kind in kinds], ignore_index=True)
    notes = " ".join(f"{kind}: {datasets.study_set(kind, data_root, profile, seed=0).note}." for kind in kinds)
    records.write_table(rows, out, "05_runs", f"Notebook 05, experiments {', '.join(kinds)}: the '{runs.PIPELINE}' "
                        f"rows only, one per repetition (draw and detection seed r); profile {profile}. {notes}")
    summary = tables.mean_std(rows, ["experiment", "method", "data"], ["acc", "nmi", "mdr", "fdr"])
    records.write_table(summary, out, "05_stability", f"Notebook 05's '{runs.PIPELINE}' rows: mean ± std over the "
                        f"repetitions; profile {profile}.")
    return list(rows.weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--only", choices=("04", "05"), default=None)
    parser.add_argument("--kinds", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    args = parser.parse_args()
    started = time.perf_counter()
    weights = []
    if args.only in (None, "04"):
        weights += notebook_04(args.out_dir, args.profile, args.data_root)
    if args.only in (None, "05"):
        weights += notebook_05(args.out_dir, args.profile, args.data_root, args.kinds)
    parameters = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    records.write_record(args.out_dir, args.profile, parameters, time.perf_counter() - started,
                         title="The notebooks' detect-then-group rows", weights=sorted(set(weights)))
    print(f"wrote {sorted(p.name for p in args.out_dir.iterdir())} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
