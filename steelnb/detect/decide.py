"""Decide again: a new threshold for a detection run from its saved scores, in seconds, without scoring the pile.

    decide(run, rule="mad", cutoff=2)  # a label-free rule, as `steelnb detect --rule mad --cutoff 2` decides
    decide(run, flag=20)               # the 20 highest scores (the rule `top`, cutoff 20)
    decide(run, target_mdr=0.05)       # with labels: the calibrated threshold, MDR <= 5 % on a labelled share

rewrites, each file whole (`atomic_path`) and under the run folder's lock: scores.csv's `defective`, metrics.json's
`label_free` (and its rates and `calibrated` where the pile has labels; `flagged_by` says which decision the flags
follow) and config.json (rule, cutoff, target_mdr), so that `steelnb detect --config RUN/config.json` decides the
same. The images now just above and below the threshold get overlays (from maps.npz, the pile read again from its
decode cache) where they have none. The caller rewrites report.html. An inspection's types were grouped from its
flagged images, so a new decision would leave them stale: `decide` takes detection runs only, and
`read_detection` hands a decided run to `steelnb inspect --from RUN`.

>>> from steelnb.cli import main
>>> import tempfile
>>> run = tempfile.mkdtemp()
>>> main(["detect", "--profile", "ci", "--out-dir", run, "--quiet"])  # doctest: +ELLIPSIS
synthetic: 600 images ...
0
>>> decide(run, flag=20)["label_free"]["flagged"]
20
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SteelnbError
from ..runfolder import claim_run_folder
from ..validation import ConfigError
from .config import DetectConfig
from .decision import label_free_threshold
from .errors import DetectError
from .pile import load_pile
from .record import DETECT_FILES, MAPS, STRIP, Detection, _calibrated, _rates, _write, label_free_record, overlay_rows


def decide(run_dir: str | Path, rule: str | None = None, cutoff: float | None = None, flag: int | None = None,
           target_mdr: float | None = None) -> dict:
    """Decide the detection run in `run_dir` again (see the module docstring); returns its new metrics.json.
    `flag` N stands for rule top, cutoff N; `target_mdr` makes the flags follow the calibrated threshold."""
    run = Path(run_dir)
    config, metrics, table = _read_run(run)
    changes = {"rule": rule, "cutoff": cutoff, "target_mdr": target_mdr}
    if flag is not None:
        changes.update(rule="top", cutoff=float(flag))
    changes = {name: value for name, value in changes.items() if value is not None}
    config = DetectConfig.from_dict({**asdict(config), **changes}, source="decide")
    maps, table = _in_pile_order(run, table)  # as detect decided: the calibration's draw depends on the order
    scores = table["score"].to_numpy(np.float64)
    scored = "auroc" in metrics  # the pile's labels hold both defective and defect-free images
    if target_mdr is not None and not scored:
        raise DetectError(f"--target-mdr needs defect / defect-free labels: {run} has none to calibrate on "
                          f"({metrics.get('scored', 'not scored')})")
    threshold = label_free_threshold(scores, config.rule, config.cutoff)
    metrics["label_free"] = label_free_record(scores, threshold, config)
    metrics.pop("flagged_by", None)
    if scored:
        truth = table["truth"].to_numpy().astype(int)
        metrics["label_free"].update(_rates(truth, scores, threshold))
        metrics["calibrated"] = _calibrated(truth, scores, config)
        if target_mdr is not None:
            if "absent" in metrics["calibrated"]:
                raise DetectError(f"--target-mdr: no calibrated decision on {run}: {metrics['calibrated']['absent']}")
            threshold, metrics["flagged_by"] = metrics["calibrated"]["threshold"], "calibrated"
    table["defective"] = (scores > threshold).astype(int)
    with claim_run_folder(run, DETECT_FILES, resume=True, resume_file="scores.csv", flag="RUN"):
        if maps is not None:
            _draw_missing_overlays(run, config, table, maps)
        _write(run / "scores.csv", table.sort_values("rank").to_csv(index=False))
        _write(run / "config.json", json.dumps(asdict(config), indent=2))
        _write(run / "metrics.json", json.dumps(metrics, indent=2, default=float))
    return metrics


def read_detection(run_dir: str | Path) -> tuple[DetectConfig, Detection]:
    """The detection a run folder saved (its config, and its scores table, maps, metrics and threshold in the pile's
    order), for a later stage to reuse without scoring again (`steelnb inspect --from RUN`)."""
    run = Path(run_dir)
    config, metrics, table = _read_run(run)
    maps, table = _in_pile_order(run, table)
    if maps is None:
        raise DetectError(f"{run} holds no {MAPS} (written by steelnb detect since it saves its maps): run steelnb "
                          "detect again")
    threshold = metrics["calibrated"]["threshold"] if metrics.get("flagged_by") == "calibrated" \
        else metrics["label_free"]["threshold"]
    metrics.pop("skipped", None)  # write_detection counts the pile's skipped files again
    return config, Detection(table.drop(columns=["overlay"], errors="ignore"), maps, metrics, threshold)


def _read_run(run: Path) -> tuple[DetectConfig, dict, pd.DataFrame]:
    """The run's config, metrics and scores table; DetectError when `run` is no finished detection run."""
    missing = [name for name in ("config.json", "metrics.json", "scores.csv") if not (run / name).is_file()]
    if missing:
        raise DetectError(f"{run} is not a finished detection run (it lacks {', '.join(missing)})")
    values = json.loads((run / "config.json").read_text())
    if "types" in values:
        raise DetectError(f"{run} is an inspection: its types were grouped from the images it flagged, so decide "
                          "would leave them stale; decide the detect run instead and steelnb inspect --from it")
    known = {f.name for f in fields(DetectConfig)}
    try:
        config = DetectConfig.from_dict({k: v for k, v in values.items() if k in known}, source=str(run))
    except ConfigError as error:
        raise DetectError(f"{run}/config.json: {error}") from None
    metrics = json.loads((run / "metrics.json").read_text())
    return config, metrics, pd.read_csv(run / "scores.csv", keep_default_na=False, na_values=[""])


def _in_pile_order(run: Path, table: pd.DataFrame) -> tuple[np.ndarray | None, pd.DataFrame]:
    """The saved maps (float32; None without maps.npz) and the scores table, both in the pile's order (maps.npz
    records it; scores.csv is by rank). Without maps.npz the table stays by rank."""
    if not (run / MAPS).is_file():
        return None, table
    with np.load(run / MAPS) as saved:
        maps, paths = saved["maps"].astype(np.float32), saved["paths"].tolist()
    if sorted(paths) != sorted(table["path"]):
        raise DetectError(f"{run}: {MAPS} and scores.csv name different images; the run folder was changed")
    return maps, table.set_index("path").loc[paths].reset_index()


def _draw_missing_overlays(run: Path, config: DetectConfig, table: pd.DataFrame, maps: np.ndarray) -> None:
    """Overlays for the images now around the threshold that have none (`table` and `maps` in the pile's order),
    the pile read again (from its decode cache); none when the pile is no longer the one scored."""
    if "overlay" not in table:
        table["overlay"] = ""
    table["overlay"] = table["overlay"].fillna("")
    rows = overlay_rows(table, 0, STRIP if config.overlays or config.all_overlays else 0)  # --overlays 0: none
    rows = rows[(table.loc[rows, "overlay"] == "").to_numpy()]
    if not len(rows):
        return
    try:
        pile = load_pile(config)
    except (SteelnbError, OSError):  # the pile moved: the report shows the overlays there are
        return
    if list(pile.paths) == table["path"].tolist():
        from .overlay import write_overlays  # torch: imported only when there are overlays to draw

        write_overlays(table, rows, maps, pile.images, config.sigma, run)
