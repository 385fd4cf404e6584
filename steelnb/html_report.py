"""`report.html`: one static page per run folder, to look at a run (opened from disk, offline, no server).

`write_report(run_dir)` reads only files in the run folder, so `steelnb report RUN_DIR` regenerates it. The page
opens with the answer in one sentence (how many images flagged, how many types, by which decision), then the
measures in one table (a plain name, the value, what it means; no type accuracy where one defect class or one
image makes it meaningless), the calibrated decision in words, and a note where the number of types was a weak
choice. From the files:

- `config.json` -> settings; `metrics.json` -> results (every number, with its key); `history.csv` -> epochs;
- `assignments.csv` (a train run) -> a gallery per cluster, most typical image first, the 2-D feature map
  (its `map_x`, `map_y`) and a table of every image;
- `scores.csv` (a detection run: path, score, rank, defective, truth, overlay) -> the ranking with its
  anomaly-map overlays, top-ranked first, the images just above and below the threshold (the threshold strip),
  and a table of every image;
- `types.csv` (an inspection: per defect type its count and gallery) with scores.csv's `type`, `type_distance`
  and `crop` -> a gallery per type of its crops, most typical first, and how the number of types came about.

Pictures live in `report_files/` next to the page: `images/NNNNN.png` (thumbnail of row NNNNN of
assignments.csv, written by `save_thumbnails`, e.g. at the end of `steelnb train`) and `feature_map.png`;
a detection run's overlays are linked where they are. Sections whose files are absent are left out.

>>> from steelnb.html_report import write_report
>>> write_report("runs/synthetic-ci")  # doctest: +SKIP
PosixPath('runs/synthetic-ci/report.html')
"""

from __future__ import annotations

import html
import json
import math
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
from PIL import Image

from .runfolder import RunFolderError, atomic_path

FILES = "report_files"
THUMBNAILS = f"{FILES}/images"
THUMBNAIL_SIDE = 128
GALLERY_SIZE = 12  # images shown per cluster
RANKING_SIZE = 24  # top-ranked images shown with their overlays
STRIP = 4  # images shown either side of the threshold (detect/record.py: its STRIP)
WEAK_CHOICE = 0.02  # silhouettes of two numbers of types this close: the choice between them is weak
# The metrics table: (metrics.json key, plain name, what it means in one line), in page order.
METRICS = (
    ("n_images", "images", "images in the pile"),
    ("label_free.flagged", "flagged defective", "images the label-free rule calls defective"),
    ("label_free.threshold", "threshold", "the image score above which an image is called defective"),
    ("defect_rate", "defect rate", "share of the pile that is defective by its labels"),
    ("auroc", "ranking AUROC", "chance that a defective image scores above a defect-free one (0.5 chance, 1 perfect)"),
    ("ap", "ranking average precision", "precision of the ranking over the defective images (chance: the defect "
                                         "rate)"),
    ("label_free.acc", "decision accuracy", "share of images the label-free decision calls rightly"),
    ("label_free.mdr", "missed defects (MDR)", "defective images called defect-free, a share of all images"),
    ("label_free.fdr", "false alarms (FDR)", "defect-free images called defective, a share of all images"),
    ("everything_defect_free.acc", "accuracy of flagging nothing", "the bar to clear: every image called "
                                                                    "defect-free"),
    ("calibrated.mdr", "calibrated: missed defects", "MDR of the calibrated decision on the images it was not "
                                                     "chosen on"),
    ("calibrated.fdr", "calibrated: false alarms", "FDR of the calibrated decision on the images it was not chosen "
                                                   "on"),
    ("localisation.peak_in_defect", "peak in the defect", "share of outlined defects whose map peak lies in the "
                                                          "outline"),
    ("five_cluster.acc", "defect-free + types accuracy", "images called rightly: defect-free, or flagged with the "
                                                         "type matched to their defect class"),
    ("types.acc", "type accuracy", "flagged defective images whose type, matched to a class, is their class"),
    ("types.nmi", "type NMI", "agreement of the types with the defect classes (0 none, 1 the same)"),
    ("eval_clusters", "clusters", "groups of the answer"),
    ("metrics.acc", "cluster accuracy", "images whose cluster, matched to a class, is their class"),
    ("metrics.nmi", "cluster NMI", "agreement of the clusters with the classes (0 none, 1 the same)"),
    ("metrics.ari", "cluster ARI", "pairs of images grouped alike in clusters and classes, chance-corrected"),
    ("decision.acc", "decision accuracy", "label-free decision (the largest cluster defect-free) called rightly"),
    ("decision.mdr", "missed defects (MDR)", "defective images called defect-free, a share of all images"),
    ("decision.fdr", "false alarms (FDR)", "defect-free images called defective, a share of all images"),
    ("run.wall_s", "seconds", "wall-clock time of the run"),
)


def thumbnail_path(row: int) -> str:
    """The thumbnail of assignments.csv row `row`, relative to the run folder."""
    return f"{THUMBNAILS}/{row:05d}.png"


def save_thumbnails(run_dir: str | Path, images: np.ndarray, side: int = THUMBNAIL_SIDE) -> None:
    """Write one PNG per image (uint8 (N, C, H, W), in assignments.csv order), the longer side at most `side`."""
    folder = Path(run_dir) / THUMBNAILS
    shutil.rmtree(folder, ignore_errors=True)  # a previous run's pictures must not stay beside this one's
    folder.mkdir(parents=True)
    for row, image in enumerate(images):
        picture = Image.fromarray(image[0] if image.shape[0] == 1 else np.transpose(image[:3], (1, 2, 0)))
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
        picture.save(Path(run_dir) / thumbnail_path(row), optimize=True)


# -- reading the run folder -------------------------------------------------------------------------------


AGAIN = "rerun the run to write it again"
NEEDED = {"assignments.csv": ("path", "cluster"), "scores.csv": ("path", "score", "rank", "defective")}  # columns


def _json(path: Path) -> dict:
    """The JSON object in `path` ({} when there is none); RunFolderError naming a damaged one."""
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is damaged: not valid JSON ({error}); {AGAIN}") from None
    if not isinstance(values, dict):
        raise RunFolderError(f"{path} is damaged: it holds a {type(values).__name__}, not a JSON object; {AGAIN}")
    return values


def _csv(path: Path) -> pd.DataFrame | None:
    """The table in `path` (None when there is none); RunFolderError naming one that is not the table steelnb
    wrote (damaged, lacking its columns, re-saved with another separator)."""
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is damaged: not a table ({type(error).__name__}); {AGAIN}") from None
    missing = [column for column in NEEDED.get(path.name, ()) if column not in table.columns]
    if missing:
        header = ",".join(map(str, table.columns))
        separator = next((s for s in (";", "\t", "|") if s in header), None)
        why = (f"its columns are separated by {separator!r}, not commas (re-saved by a spreadsheet?)" if separator
               else f"it lacks the columns {missing}")
        raise RunFolderError(f"{path} is not the table steelnb wrote: {why}; save it with commas or {AGAIN}")
    return table


def flatten(values: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become JSON text."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = json.dumps(value) if isinstance(value, list) else value
    return out


def number(value: object) -> str:
    """How the page writes a value: floats to 4 significant digits, None as "none", the rest as they are."""
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return "none" if value is None else str(value)


# -- HTML pieces ------------------------------------------------------------------------------------------

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2733; background: #f4f6f8;
       margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
nav { font-size: 14px; margin: 0 0 8px; } nav a { margin-right: 14px; color: #2c5d8a; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 1px solid #d5dbe1;
     padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.sub { color: #5a6876; margin: 0 0 18px; } .note { color: #5a6876; font-size: 14px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #e1e6eb; padding: 3px 8px; text-align: left; vertical-align: middle; }
th { background: #eef1f4; position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-order="asc"]::after { content: " \\25B2"; }
table.sortable th[data-order="desc"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 640px; overflow: auto; border: 1px solid #dde3e9; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; background: #fff; border: 1px solid #dde3e9; border-radius: 6px; padding: 4px; text-align: center; }
figure img { display: block; width: 112px; height: auto; image-rendering: auto; }
.ranking figure img { width: 200px; }
figcaption { font-size: 11px; color: #44515e; max-width: 200px; overflow-wrap: anywhere; }
.flag { color: #b3261e; font-weight: 600; }
.headline { font-size: 20px; font-weight: 600; margin: 6px 0 14px; }
table.metrics td.note { font-size: 13px; }
.strip { align-items: stretch; }
.threshold-line { border-left: 3px dashed #b3261e; padding: 0 6px; display: flex; align-items: center; }
.threshold-line span { writing-mode: vertical-rl; color: #b3261e; font-size: 12px; }
td img { height: 32px; display: block; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 2px 18px; background: #fff;
      border: 1px solid #dde3e9; border-radius: 6px; padding: 8px 12px; font-size: 13px; }
.kv div { display: flex; justify-content: space-between; gap: 10px; border-bottom: 1px dotted #e1e6eb; }
.kv .k { color: #5a6876; } .kv .v { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; text-align: right; }
input.filter { margin: 6px 0; padding: 4px 8px; width: 320px; }
details { margin: 8px 0; } summary { cursor: pointer; color: #2c5d8a; }
"""

# Click a header to sort by it (numbers as numbers, again to reverse); type in the box to filter rows.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.dataset.order !== "asc";
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? "asc" : "desc";
      var key = function (row) {
        var cell = row.cells[col], text = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
        var value = Number(text);
        return text.trim() !== "" && !isNaN(value) ? value : text;
      };
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = (typeof x === "number" && typeof y === "number") ? x - y
              : String(x).localeCompare(String(y), undefined, {numeric: true});
        return asc ? c : -c;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    });
  });
});
document.querySelectorAll("input.filter").forEach(function (box) {
  box.addEventListener("input", function () {
    var want = box.value.toLowerCase();
    var rows = document.getElementById(box.dataset.table).tBodies[0].rows;
    Array.prototype.forEach.call(rows, function (row) {
      row.style.display = row.textContent.toLowerCase().indexOf(want) >= 0 ? "" : "none";
    });
  });
});
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _href(path: str) -> str:
    return _e(quote(path))


def _cell(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return f"<td>{_e(number(value))}</td>"
    value = value.item() if isinstance(value, np.generic) else value
    return f'<td class="num" data-sort="{_e(value)}">{_e(number(value))}</td>'


def _table(frame: pd.DataFrame, table_id: str, pictures: list[str | None] | None = None,
           filter_box: bool = True) -> str:
    """A sortable table of `frame`; `pictures` (one per row, relative paths or None) adds a linked thumbnail;
    `filter_box` a box that hides the rows not holding its text."""
    head = (["picture"] if pictures is not None else []) + list(frame.columns)
    rows = []
    for index, record in enumerate(frame.itertuples(index=False)):
        cells = [_cell(v) for v in record]
        if pictures is not None:
            link = _href(pictures[index]) if pictures[index] else None
            cells.insert(0, f'<td><a href="{link}"><img src="{link}" loading="lazy" alt=""></a></td>' if link
                         else "<td></td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    box = f'<input class="filter" data-table="{table_id}" placeholder="filter rows (any text)">' if filter_box else ""
    return (f'{box}<div class="scroll"><table class="sortable" id="{table_id}"><thead><tr>'
            + "".join(f"<th>{_e(h)}</th>" for h in head) + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _key_values(values: dict, file: str) -> str:
    """Every entry of a flattened dict as "key value"; each value carries its file, key and exact value
    (`data-file`, `data-key`, `data-value`), so what the page says can be checked against the file."""
    items = [f'<div><span class="k">{_e(key)}</span><span class="v" data-file="{file}" data-key="{_e(key)}" '
             f'data-value="{_e(json.dumps(value))}">{_e(number(value))}</span></div>'
             for key, value in flatten(values).items()]
    return f'<div class="kv">{"".join(items)}</div>'


def _metric_table(metrics: dict, hidden: tuple[str, ...] = ()) -> str:
    """The run's numbers in one table: a plain name, the value (with its metrics.json key, `data-key`) and what it
    means; keys under a `hidden` prefix are left out (a metric that cannot mean anything here)."""
    values = flatten(metrics)
    rows = [f'<tr><td>{_e(name)}</td><td class="num"><span data-file="metrics.json" data-key="{_e(key)}" '
            f'data-value="{_e(json.dumps(values[key]))}">{_e(number(values[key]))}</span></td>'
            f'<td class="note">{_e(meaning)}</td></tr>'
            for key, name, meaning in METRICS
            if isinstance(values.get(key), (int, float)) and not isinstance(values[key], bool)
            and not key.startswith(hidden)]
    return (f'<table class="metrics" id="metrics"><thead><tr><th>measure</th><th>value</th><th>what it means</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>') if rows else ""


def _figure(picture: str, caption: str, link: str | None = None) -> str:
    image = f'<img src="{_href(picture)}" loading="lazy" alt="{_e(caption)}">'
    return f'<figure><a href="{_href(link or picture)}">{image}</a><figcaption>{caption}</figcaption></figure>'


# -- sections (each returns its content; write_report adds the headings) ----------------------------------


def _results(metrics: dict, scores: pd.DataFrame | None, run_dir: Path) -> str:
    why_not = types_not_meaningful(scores)
    parts = [_metric_table(metrics, ("types.",) if why_not else ())]
    if why_not and isinstance(metrics.get("types"), dict):
        parts.append(f'<p class="note" id="types-not-scored">No type accuracy: {_e(why_not)}.</p>')
    if "decision" in metrics:
        parts.append('<p class="note">Label-free decision: the largest cluster is called defect-free; '
                     "its scores against the defect flags are under <code>decision</code>.</p>")
    elif "decision_absent" in metrics:
        parts.append(f'<p class="note">Label-free defect decision: {_e(metrics["decision_absent"])}.</p>')
    if isinstance(metrics.get("calibrated"), dict):
        parts.append(_calibrated(metrics["calibrated"], metrics.get("flagged_by") == "calibrated"))
    parts.append(_weak_choice(run_dir))
    every = _key_values(metrics, "metrics.json")
    parts.append(f"<details><summary>everything in metrics.json</summary>{every}</details>")
    return "".join(parts)


def types_not_meaningful(scores: pd.DataFrame | None) -> str | None:
    """Why matching the types to the labels cannot mean anything for this run (None: it can): the flagged
    defective images hold one defect class by their labels, or there is one of them."""
    if scores is None or not {"type", "truth", "label"} <= set(scores.columns):
        return None
    real = scores[(scores["defective"] == 1) & (scores["truth"] == 1)]
    if len(real) <= 1:
        return f"{len(real)} truly defective image{'s' * (len(real) != 1)} flagged, nothing to group"
    if real["label"].nunique() == 1:
        return (f"the {len(real)} truly defective flagged images all hold one defect class ({real['label'].iat[0]}) "
                "by their labels, so any grouping matches it")
    return None


def _calibrated(calibrated: dict, followed: bool) -> str:
    """The calibrated decision in words: its target, that its threshold was chosen on a labelled share, and how
    it did on the rest."""
    if "absent" in calibrated:
        return f'<p class="note">No calibrated decision: {_e(calibrated["absent"])}.</p>'
    target, mdr = calibrated["target_mdr"], calibrated["mdr"]
    text = (f"Calibrated decision (uses the labels): its threshold ({number(calibrated['threshold'])}) is the "
            f"largest whose miss rate (defective images called defect-free, a share of all images) is at most "
            f"{target:.1%} on a labelled {calibrated['calibration_share']:.0%} of the pile "
            f"({calibrated['n_calibration']} images), chosen there; on the other "
            f"{calibrated['n_scored']} images it misses {mdr:.1%} (MDR) and raises {calibrated['fdr']:.1%} false "
            "alarms (FDR).")
    if mdr > target:
        text += (" Its MDR there is above the target: the few defective images of the labelled share did not "
                 "hold it; a larger --calibration-share would.")
    text += (" The flags of this run follow it (steelnb decide --target-mdr)." if followed else
             " The flags of this run follow the label-free rule; steelnb decide RUN --target-mdr X makes them "
             "follow this one.")
    return f'<p class="note" id="calibrated">{_e(text)}</p>'


def _weak_choice(run_dir: Path) -> str:
    """A note where the number of types was chosen by silhouettes that hardly differ (within WEAK_CHOICE)."""
    choice = _csv(run_dir / "type_choice.csv")
    method = _json(run_dir / "config.json").get("types", {}).get("type_choice")
    if choice is None or method != "silhouette" or len(choice.dropna(subset=["score"])) < 2:
        return ""
    best = choice.dropna(subset=["score"]).sort_values("score", ascending=False).head(2)
    (k1, s1), (k2, s2) = best[["k", "score"]].itertuples(index=False)
    if s1 - s2 > WEAK_CHOICE:
        return ""
    return (f'<p class="note" id="weak-choice">The number of types is a weak choice: {int(k1)} and {int(k2)} types '
            f"have silhouettes within {WEAK_CHOICE} ({number(float(s1))} and {number(float(s2))}); look at both "
            f"(steelnb inspect --types {int(k2)}).</p>")


def _pictures(run_dir: Path, count: int) -> list[str | None]:
    return [p if (run_dir / p).is_file() else None for p in map(thumbnail_path, range(count))]


def _clusters(run_dir: Path, table: pd.DataFrame, metrics: dict) -> str:
    pictures = _pictures(run_dir, len(table))
    if not any(pictures):
        return ('<p class="note">No thumbnails in this folder (<code>steelnb train</code> writes them); the table '
                "below lists every image.</p>")
    parts = [f'<p class="note">Up to {GALLERY_SIZE} images per cluster, closest to its centroid (most typical) '
             "first; the caption is the image's label where known, else its file name.</p>"]
    for cluster, members in table.groupby("cluster", sort=True):
        heading = f"cluster {cluster} · {len(members)} images ({len(members) / len(table):.0%})"
        if cluster == metrics.get("normal_cluster"):
            heading += " · the largest"
        if "label" in members:
            counts = members["label"].value_counts()
            heading += f" · mostly {counts.index[0]} ({counts.iloc[0] / len(members):.0%})"
        shown = members.sort_values("distance", kind="stable").head(GALLERY_SIZE)
        figures = [_figure(pictures[i], _e(row["label"] if "label" in row else Path(str(row["path"])).name))
                   for i, row in shown.iterrows() if pictures[i]]
        parts.append(f'<h3>{_e(heading)}</h3><div class="gallery">{"".join(figures)}</div>')
    return "".join(parts)


def _feature_map(run_dir: Path, table: pd.DataFrame) -> str:
    """Draw report_files/feature_map.png from assignments.csv's map_x, map_y, coloured by cluster and label."""
    from matplotlib import pyplot as plt

    from .plots import feature_map

    colourings = {"cluster": (table["cluster"].to_numpy(), None)}
    if "label" in table:
        codes, names = pd.factorize(table["label"], sort=True)
        colourings["label"] = (codes, list(names))
    figure = feature_map(table[["map_x", "map_y"]].to_numpy(), colourings)
    path = run_dir / FILES / "feature_map.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return ('<p class="note">The clustered features of every image, projected to 2-D (PCA): nearby points looked '
            f'alike to the model.</p><img src="{FILES}/feature_map.png" alt="feature map" style="max-width:100%">')


def _ranking_figure(run_dir: Path, row: pd.Series) -> str | None:
    """The overlay of one scores.csv row, captioned with its rank, score, decision and truth; None without one."""
    overlay = row.get("overlay")
    if not isinstance(overlay, str) or not (run_dir / overlay).is_file():
        return None
    called = '<span class="flag">defective</span>' if int(row["defective"]) else "defect-free"
    truth = ""
    if "truth" in row and not pd.isna(row["truth"]):
        truth = f" · truth: {'defective' if int(row['truth']) else 'defect-free'}"
    caption = f"#{int(row['rank'])} · score {number(float(row['score']))} · {called}{truth}<br>{_e(row['path'])}"
    return _figure(overlay, caption)


def _ranking(run_dir: Path, scores: pd.DataFrame) -> str:
    top = scores.sort_values("rank", kind="stable").head(RANKING_SIZE)
    figures = [f for f in (_ranking_figure(run_dir, row) for _, row in top.iterrows()) if f]
    if not figures:
        return "<p>No overlays in this folder.</p>"
    shown = (f"The {len(figures)} highest anomaly scores" if len(figures) == len(top) else
             f"{len(figures)} of the {len(top)} highest anomaly scores (those with an overlay)")
    note = (f'<p class="note" id="ranking-caption">{shown}, highest first, each with its anomaly-map overlay; '
            '<span class="flag">defective</span>: called defective by the run\'s threshold.</p>')
    return f'{note}<div class="gallery ranking">{"".join(figures)}</div>'


def _threshold_strip(run_dir: Path, scores: pd.DataFrame, metrics: dict) -> str:
    """The images just above and just below the threshold, with their overlays and a line between: the decisions
    nearest the threshold, the ones to check by eye."""
    flagged = int(scores["defective"].sum())
    ranked = scores.sort_values("rank", kind="stable")
    above = ranked[(ranked["rank"] > flagged - STRIP) & (ranked["rank"] <= flagged)]
    below = ranked[(ranked["rank"] > flagged) & (ranked["rank"] <= flagged + STRIP)]
    sides = [[f for f in (_ranking_figure(run_dir, row) for _, row in part.iterrows()) if f] for part in (above, below)]
    threshold = metrics.get("calibrated", {}).get("threshold") if metrics.get("flagged_by") == "calibrated" \
        else metrics.get("label_free", {}).get("threshold")
    line = f"threshold {number(float(threshold))}" if isinstance(threshold, (int, float)) else "threshold"
    note = (f'<p class="note">The {len(sides[0])} flagged images with the lowest scores (left of the line) and the '
            f"{len(sides[1])} not flagged with the highest (right): the decisions nearest the threshold, the ones to "
            "check by eye. <code>steelnb decide RUN --cutoff X</code> (or <code>--flag N</code>) moves the "
            "threshold without scoring again.</p>")
    if not any(sides):
        return note + "<p>No overlays of these images in this folder.</p>"
    return (f'{note}<div class="gallery strip" id="threshold-strip">{"".join(sides[0])}'
            f'<div class="threshold-line" title="{_e(line)}"><span>{_e(line)}</span></div>{"".join(sides[1])}</div>')


def _types(run_dir: Path, types: pd.DataFrame, scores: pd.DataFrame | None, metrics: dict) -> str:
    """A gallery per defect type: its crops (scores.csv's `crop`), closest to the type's centre first."""
    stage = metrics.get("type_stage", {})
    parts = [f'<p class="note">{_e(stage.get("how", ""))}. Each flagged image is cropped around its anomaly peak; '
             f"up to {GALLERY_SIZE} crops per type, the most typical first; the caption is the image's label where "
             "known, else its file name. The montage of each type is linked beside its heading.</p>"]
    if types.empty or scores is None or "crop" not in scores:
        return parts[0]
    for _, row in types.iterrows():
        heading = f"type {int(row['type'])} · {int(row['count'])} images ({float(row['share']):.0%})"
        if "majority" in row and isinstance(row["majority"], str):
            heading += f" · mostly {row['majority']} ({float(row['majority_share']):.0%})"
        members = scores[scores["type"] == row["type"]].sort_values("type_distance", kind="stable")
        if "truth" in members and len(members) and (members["truth"] == 0).all():
            heading += " · every one defect-free by the labels: false alarms"
        figures = [_figure(r["crop"], _e(r["label"] if "label" in r and isinstance(r["label"], str)
                                         else Path(str(r["path"])).name))
                   for _, r in members.head(GALLERY_SIZE).iterrows()
                   if isinstance(r["crop"], str) and (run_dir / r["crop"]).is_file()]
        gallery = row.get("gallery")
        link = (f' <a href="{_href(gallery)}">montage</a>' if isinstance(gallery, str) and (run_dir / gallery).is_file()
                else "")
        parts.append(f'<h3>{_e(heading)}{link}</h3><div class="gallery">{"".join(figures)}</div>')
    return "".join(parts)


def _history(history: pd.DataFrame) -> str:
    return ('<p class="note">history.csv: loss, agreement of the pseudo-labels with the previous epoch\'s '
            "(nmi_prev) and, where labels exist, the answer's NMI / ACC; seconds per phase.</p>"
            f"{_table(history.round(4), 'history', filter_box=False)}")


# -- the page ---------------------------------------------------------------------------------------------


def _title(run_dir: Path, config: dict, metrics: dict) -> str:
    run = metrics.get("run", {})
    backbone = run.get("backbone", config.get("backbone"))
    facts = [config.get("dataset"), f"{metrics['n_images']} images" if "n_images" in metrics else None,
             f"{backbone} ({run.get('weights', config.get('weights'))})" if backbone else None,
             f"{config['epochs']} epochs" if "epochs" in config else None,
             " on ".join(filter(None, [f"{run['wall_s']} s", run.get("device")])) if "wall_s" in run else None]
    return (f"<h1>{_e(run_dir.resolve().name)}</h1>"
            f'<p class="sub">{_e(" · ".join(str(f) for f in facts if f))}</p>')


def rule_name(label_free: dict) -> str:
    """metrics.json's label-free rule as a person reads it: "auto: null" where `auto` picked `null`.

    >>> rule_name({"rule": "auto", "rule_used": "null"}), rule_name({"rule": "mad"})
    ('auto: null', 'mad')
    """
    used = label_free.get("rule_used")
    return f"{label_free['rule']}: {used}" if used else label_free["rule"]


def _headline(config: dict, metrics: dict, scores: pd.DataFrame | None) -> str:
    """The answer in one sentence, first on the page: how many flagged (and how many types), by which decision; or
    how many clusters."""
    parts = []
    if scores is not None and "defective" in scores:
        parts.append(f"{int(scores['defective'].sum())} of {len(scores)} images flagged defective")
        stage = metrics.get("type_stage")
        if isinstance(stage, dict):
            parts.append(f"{stage['k']} type{'s' * (stage['k'] != 1)}" if stage.get("k") else "no types grouped")
        calibrated, free = metrics.get("calibrated", {}), metrics.get("label_free", {})
        if metrics.get("flagged_by") == "calibrated":
            parts.append(f"calibrated threshold, miss rate at most {calibrated['target_mdr']:g} on a labelled share")
        elif free.get("rule") == "top":
            parts.append(f"the {free['cutoff']:g} highest scores (rule top)")
        elif "rule" in free:
            parts.append(f"label-free rule {rule_name(free)}, cutoff {free['cutoff']:g}")
        if "auroc" in metrics and "mdr" in free:
            parts.append(f"against the labels: {free['mdr']:.1%} missed, {free['fdr']:.1%} false alarms")
    elif "eval_clusters" in metrics:
        parts.append(f"{metrics.get('n_images', '?')} images in {metrics['eval_clusters']} clusters")
        if isinstance(metrics.get("metrics"), dict) and "acc" in metrics["metrics"]:
            parts.append(f"cluster accuracy {metrics['metrics']['acc']:.1%} against the labels")
    return f'<p class="headline" id="headline">{_e("; ".join(parts))}.</p>' if parts else ""


def _sections(run_dir: Path, config: dict, metrics: dict) -> list[tuple[str, str]]:
    """(title, content) of every section the run folder's files allow, in page order."""
    assignments, scores = _csv(run_dir / "assignments.csv"), _csv(run_dir / "scores.csv")
    history, types = _csv(run_dir / "history.csv"), _csv(run_dir / "types.csv")
    sections = [("Results", _results(metrics, scores, run_dir))] if metrics else []
    if types is not None:
        sections.append(("Defect types", _types(run_dir, types, scores, metrics)))
    if scores is not None:
        overlays = [o if isinstance(o, str) and (run_dir / o).is_file() else None
                    for o in (scores["overlay"] if "overlay" in scores else [None] * len(scores))]
        sections += [("Detection ranking", _ranking(run_dir, scores)),
                     ("Around the threshold", _threshold_strip(run_dir, scores, metrics)),
                     ("Every image", _table(scores, "images", overlays))]
    if assignments is not None:
        sections.append(("Clusters", _clusters(run_dir, assignments, metrics)))
        if {"map_x", "map_y"} <= set(assignments.columns):
            sections.append(("Feature map", _feature_map(run_dir, assignments)))
        shown = assignments.drop(columns=["map_x", "map_y"], errors="ignore")
        sections.append(("Every image", _table(shown, "images", _pictures(run_dir, len(assignments)))))
    if history is not None:
        sections.append(("Epochs", _history(history)))
    if config:
        sections.append(("Settings", '<p class="note">config.json</p>' + _key_values(config, "config.json")))
    return sections


def write_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report.html` (and its pictures under `report_files/`) from the run folder's files.

    >>> import tempfile
    >>> from steelnb.cli import main
    >>> folder = tempfile.mkdtemp()
    >>> main(["train", "--profile", "ci", "--epochs", "1", "--steps-per-epoch", "1", "--max-per-class", "3",
    ...       "--image-size", "32", "--global-size", "32", "--out-dir", folder, "--quiet"])  # writes report.html too
    synthetic: 21 images; backbone resnet18 (random); 1 epochs -> ...
    0
    >>> (Path(folder) / "report.html").unlink()
    >>> write_report(folder).name, (Path(folder) / "report_files").is_dir()  # the page again, from the files
    ('report.html', True)
    """
    run_dir = Path(run_dir)
    config, metrics = _json(run_dir / "config.json"), _json(run_dir / "metrics.json")
    if not config and not metrics:
        raise FileNotFoundError(f"{run_dir} holds neither config.json nor metrics.json: not a run folder")
    sections = _sections(run_dir, config, metrics)
    headline = _headline(config, metrics, _csv(run_dir / "scores.csv"))
    anchors = [title.lower().replace(" ", "-") for title, _ in sections]
    nav = "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, (t, _) in zip(anchors, sections, strict=True))
    body = "".join(f'<section id="{a}"><h2>{_e(t)}</h2>{content}</section>'
                   for a, (t, content) in zip(anchors, sections, strict=True))
    title = _e(run_dir.resolve().name)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · steelnb</title>'
            f"<style>{CSS}</style></head><body><main>{_title(run_dir, config, metrics)}{headline}"
            f"{nav}</nav>{body}</main><script>{SCRIPT}</script></body></html>\n")
    path = run_dir / "report.html"
    with atomic_path(path) as partial:  # never half a page, even when the run is killed while writing it
        partial.write_text(page, encoding="utf-8")
    return path
