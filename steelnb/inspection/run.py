"""One inspection: detect the defective images of a pile, then group what was found into defect types.

    pile -> `steelnb.detect` (scores, the label-free decision, each image's anomaly peak; no label used)
         -> the images to group: the flagged ones, and the ranking's top N with `--top` / `--top-rate`
         -> a square crop around each separate anomalous region of their maps, strongest first (`crops.py`)
         -> the crops' types: their starting features, or the joint method where it pays (`grouping.py`)
         -> per image: score, decision, why grouped, type (its strongest region's), crop; per region: its type
            and crop; per type: count and a gallery; the scores where labels exist (`evaluation.py`);
            `write_inspection` writes them into a run folder

A pile where nothing is grouped stops after detection, saying so (`Inspection.note`); one where fewer images
are flagged than types asked for groups what there is and says how to group more (`--top`).

>>> from steelnb.data import load_dataset
>>> from steelnb.detect import DetectConfig
>>> pile = load_dataset("synthetic", image_size=64, n_images=24, defect_rate=0.25, seed=0)
>>> found = inspect_pile(DetectConfig(max_side=64, method="self", backbone="resnet18", weights="random",
...                                   device="cpu"), TypesConfig(types=2, profile="ci"), pile)
>>> found.table.columns[-5:].tolist(), found.crops.shape[1:]
(['label', 'grouped', 'regions', 'type', 'type_distance'], (1, 64, 64))
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from ..data import UNKNOWN, ImageSet
from ..detect import DETECT_FILES, DetectConfig, DetectError, Detection, detect, load_pile, write_detection
from ..detect.scoring import smooth
from ..progress import phase
from ..runfolder import atomic_path
from .config import TypesConfig
from .crops import CONTEXT, anomalous_regions, crop_side, crop_weights, defect_crops, map_share
from .evaluation import pipeline_scores
from .grouping import Grouping, crop_size, group_types, settings_record

CROPS, GALLERIES = "crops", "galleries"
# Every file an inspection writes into its folder: a detection run's, and the type stage's.
INSPECT_FILES = (*DETECT_FILES, CROPS, GALLERIES, "types.csv", "regions.csv", "type_choice.csv",
                 "type_history.csv")
MORE = "give --top N (or --top-rate S) to group the N highest-ranked images as well"
NOTHING_FLAGGED = f"no image was flagged defective: the type stage had nothing to group and stopped; {MORE}"
REGION_COLUMNS = ["image", "region", "peak_y", "peak_x", "peak", "type", "type_distance"]


@dataclass
class Inspection:
    """A pile detected and grouped.

    table:    detection's table (path, score, rank, defective, peak_y, peak_x, truth / label where known) with
              `grouped` (why the image was grouped: flagged, top N, both; "" where not), `regions` (its crops),
              `type` (its strongest region's; -1 where not grouped) and `type_distance` (to its type's centre,
              lower = more typical);
    pile:     the images detection scored (sides made multiples of its grid, see `fit_sides`; the crops are cut
              from the images as given, at the same fractions);
    grouped:  indices (into the pile) of the images grouped;
    regions:  one row per crop (`REGION_COLUMNS`: its image's index, region 0 = the strongest, peak as fractions,
              the map's value there, type, type_distance), in the order of `crops`;
    crops:    uint8 (M, C, S, S), one per region;
    grouping: the type stage's answer, None when nothing was grouped;
    metrics:  detection's numbers, `type_stage` (k, how, sizes, which features answered, run, what was grouped)
              and, where labels exist, `two_cluster`, `five_cluster` and `types` (see evaluation.py).
    """

    detection: Detection
    table: pd.DataFrame
    pile: ImageSet
    grouped: np.ndarray
    regions: pd.DataFrame
    crops: np.ndarray
    grouping: Grouping | None
    metrics: dict

    @property
    def note(self) -> str:
        """What the type stage did, in a sentence."""
        return self.metrics["type_stage"]["how"]


def fit_sides(data: ImageSet, multiple: int) -> ImageSet:
    """`data` with each side rounded to a multiple of `multiple` (at least one), resized when it was not (detection's
    patch grid needs it; `load_pile` reads a pile so already)."""
    height, width = data.images.shape[-2:]
    size = tuple(max(multiple, round(side / multiple) * multiple) for side in (height, width))
    if size == (height, width) or len(data) == 0:
        return data
    pixels = torch.from_numpy(data.images).float()
    resized = F.interpolate(pixels, size, mode="bilinear", align_corners=False, antialias=True)
    return replace(data, images=resized.round().clamp(0, 255).to(torch.uint8).numpy(),
                   meta={**data.meta, "resized_for_detection": [height, width]})


def truth_of(data: ImageSet) -> tuple[np.ndarray | None, np.ndarray | None, int | None]:
    """Class labels (or None), defect flags (or None) and the defect-free class index (or None) of `data`: the
    class holding exactly the images not flagged defective where there are both (KSDD's is named "good"), else the
    one `meta["normal_class"]` or "defect-free" names."""
    labels = data.labels if data.has_labels else None
    defective = data.defective.astype(np.int64) if data.has_defect_flags else None
    if labels is None:
        return None, defective, None
    if defective is not None:
        free = np.unique(labels[defective == 0])
        if len(free) == 1 and not np.isin(labels[defective == 1], free).any():
            return labels, defective, int(free[0])
    name = data.meta.get("normal_class") or "defect-free"
    return labels, defective, data.class_names.index(name) if name in data.class_names else None


def detect_pile(detect_config: DetectConfig, data: ImageSet | None = None) -> tuple[ImageSet, Detection]:
    """The first stage alone: the pile (sides fitted to detection's grid, `fit_sides`) and its detection."""
    data = load_pile(detect_config) if data is None else data
    pile = fit_sides(data, max(32, *detect_config.stride_list))
    return pile, detect(detect_config, pile)


def inspect_pile(detect_config: DetectConfig, types_config: TypesConfig, data: ImageSet | None = None,
                 only_flagged: bool = True, detection: Detection | None = None) -> Inspection:
    """Detect, then group: the pile `data` (else the one `detect_config` names). `only_flagged=False` groups
    every image, flagged or not (the type stage alone, e.g. on a pile known to be all defective). `detection`:
    the pile's detection, saved by an earlier run (`steelnb inspect --from RUN`), reused instead of scoring."""
    started = time.perf_counter()
    data = load_pile(detect_config) if data is None else data
    reused = detection is not None
    if not reused:
        pile, detection = detect_pile(detect_config, data)
    else:
        pile = fit_sides(data, max(32, *detect_config.stride_list))
        if list(pile.paths) != detection.table["path"].tolist():
            raise DetectError(f"{pile.name}: the pile's images are no longer those its saved detection scored")
    table = detection.table.copy()
    reasons = grouping_reasons(table, types_config, only_flagged)
    grouped = np.flatnonzero(reasons != "")
    size = crop_size(types_config.profile)
    crops = np.zeros((0, pile.images.shape[1], size, size), np.uint8)
    regions = pd.DataFrame(columns=REGION_COLUMNS)
    grouping, share = None, {"share_of_shorter_side": types_config.crop_share}
    if len(grouped):
        maps = smooth(torch.from_numpy(detection.maps[grouped]), detect_config.sigma).numpy()  # as detection's peaks
        share = crop_share(types_config, maps, *data.images.shape[-2:])
        regions = find_regions(detection, maps, grouped, types_config.regions)
        with phase(f"cropping {len(regions)} regions of {len(grouped)} images around their anomaly peaks"):
            crops = defect_crops(data.images[regions["image"].to_numpy()], regions["peak_y"].to_numpy(),
                                 regions["peak_x"].to_numpy(), share["share_of_shorter_side"], size)
        crop_set = ImageSet(f"{pile.name}-crops", crops, np.full(len(crops), UNKNOWN, np.int64),
                            np.full(len(crops), UNKNOWN, np.int8), (),
                            tuple(pile.paths[i] for i in regions["image"]))
        weights = None
        if types_config.pooling != "mean":
            of_region = maps[np.searchsorted(grouped, regions["image"].to_numpy())]  # grouped is sorted
            weights = crop_weights(of_region, regions["peak_y"].to_numpy(), regions["peak_x"].to_numpy(),
                                   *data.images.shape[-2:], share["share_of_shorter_side"], size,
                                   region=types_config.pooling == "region")
        grouping = group_types(crop_set, types_config, detect_config.seed, detect_config.device, weights)
        regions["type"], regions["type_distance"] = grouping.types, grouping.distances.round(5)
    main = regions[regions["region"] == 0]
    types, distances = np.full(len(pile), -1, np.int64), np.full(len(pile), np.nan)
    types[main["image"].to_numpy(np.int64)] = main["type"].to_numpy(np.int64)
    distances[main["image"].to_numpy(np.int64)] = main["type_distance"].to_numpy(float)
    table["grouped"] = reasons
    table["regions"] = np.bincount(regions["image"].to_numpy(np.int64), minlength=len(pile))
    table["type"], table["type_distance"] = types, distances.round(5)
    stage = grouping.record() if grouping else {"k": 0, "how": NOTHING_FLAGGED, "sizes": []}
    detecting = 0 if reused else detection.metrics["run"]["total_s"]
    stage.update(grouped=len(grouped), regions=len(regions), only_flagged=only_flagged,
                 why_grouped={str(k): int(v) for k, v in pd.Series(reasons[grouped]).value_counts().items()},
                 crop={**share, "resized_to": size},
                 seconds=round(time.perf_counter() - started - detecting, 1))
    note = few_grouped_note(len(grouped), types_config)
    if note:
        stage["note"] = note
    labels, defective, normal = truth_of(pile)
    metrics = {**detection.metrics, "type_stage": stage,
               **pipeline_scores(labels, defective, normal, table["defective"].to_numpy(), types,
                                 (reasons != "").astype(np.int64))}
    metrics["run"] = {**metrics["run"], "inspect_wall_s": round(time.perf_counter() - started, 1)}
    return Inspection(detection, table, pile, grouped, regions, crops, grouping, metrics)


def grouping_reasons(table: pd.DataFrame, config: TypesConfig, only_flagged: bool = True) -> np.ndarray:
    """Why each image of detection's `table` is grouped: "flagged" (the label-free decision), "top N" (among the
    N highest-ranked, `TypesConfig.top_count`), "flagged, top N", "every image" (`only_flagged=False`); "" not.

    >>> table = pd.DataFrame({"rank": [3, 1, 2, 4], "defective": [0, 1, 0, 0]})
    >>> grouping_reasons(table, TypesConfig(top=2)).tolist()
    ['', 'flagged, top 2', 'top 2', '']
    """
    if not only_flagged:
        return np.full(len(table), "every image", dtype=object)
    flagged = table["defective"].to_numpy() == 1
    top = config.top_count(len(table))
    ranked = table["rank"].to_numpy() <= top
    reasons = np.full(len(table), "", dtype=object)
    reasons[flagged] = "flagged"
    reasons[ranked & ~flagged] = f"top {top}"
    reasons[ranked & flagged] = f"flagged, top {top}"
    return reasons


def few_grouped_note(grouped: int, config: TypesConfig) -> str:
    """A sentence where fewer images were grouped than types asked for (or than the choice needs); "" else."""
    wanted = config.types if config.types is not None else config.min_types + 1
    if grouped == 0 or grouped >= wanted:
        return ""
    what = f"the {config.types} types asked for" if config.types is not None else \
        f"the {wanted} a choice among {config.min_types}..{config.max_types} types needs"
    more = MORE if config.top is None and config.top_rate is None else "give a larger --top or --top-rate to group more"
    return f"only {grouped} image{'s' * (grouped != 1)} grouped, fewer than {what}; {more}"


def find_regions(detection: Detection, maps: np.ndarray, grouped: np.ndarray, limit: int) -> pd.DataFrame:
    """One row per separate anomalous region of each grouped image's map (`maps`, in the order of `grouped`,
    smoothed as detection's peaks were), strongest first and at most `limit` an image (`crops.anomalous_regions`,
    the others above detection's threshold); region 0's peak is detection's own (`peak_y`, `peak_x`)."""
    rows = []
    for image, cells in zip(grouped, maps, strict=True):
        found = anomalous_regions(cells, limit, detection.threshold)
        found[0, :2] = detection.table["peak_y"].iat[image], detection.table["peak_x"].iat[image]
        rows += [{"image": int(image), "region": r, "peak_y": round(float(y), 4), "peak_x": round(float(x), 4),
                  "peak": float(value)} for r, (y, x, value) in enumerate(found)]
    return pd.DataFrame(rows, columns=REGION_COLUMNS[:5])


def crop_share(config: TypesConfig, maps: np.ndarray, height: int, width: int) -> dict:
    """The crops' share of the shorter side (given, or from the grouped images' `maps`, smoothed as detection's
    peaks were: `crops.map_share`), their side in pixels and how the share was set."""
    share, how = config.crop_share, "given (--crop-share)"
    if share is None:
        share = map_share(maps, height, width)
        how = f"{CONTEXT:g} x the median extent of the grouped images' defect regions in their maps, at most 1"
    return {"share_of_shorter_side": round(share, 4), "side_px": crop_side(height, width, share), "how": how}


# -- the run folder ---------------------------------------------------------------------------------------


def crop_name(index: int, path: str, region: int = 0) -> str:
    """The crop's file in the run folder, by its image's position in the pile, its file name and (after the
    strongest) its region's number."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:60]
    return f"{CROPS}/{index:05d}_{stem}{f'_region{region + 1}' if region else ''}.png"


def gallery_name(group: int) -> str:
    return f"{GALLERIES}/type_{group:02d}.png"


def write_inspection(inspection: Inspection, detect_config: DetectConfig, types_config: TypesConfig,
                     out: Path) -> None:
    """Into `out`: a detection run's files (scores.csv with grouped, regions, type, type_distance and crop
    added: one row per image, its strongest region's type and crop; overlays/, skipped.csv), crops/ (one PNG per
    region), regions.csv (one row per region: its image, peak, type, crop), galleries/ (one montage per type and
    `all_types.png`), types.csv (per type: images, regions, share, gallery, majority label where known),
    type_choice.csv and type_history.csv (when a number was chosen / a model trained), metrics.json and
    config.json."""
    out = Path(out)
    pile, table = inspection.pile, inspection.table.copy()
    write_detection(inspection.detection, pile, detect_config, out)
    regions = _region_table(inspection)
    if len(regions):
        (out / CROPS).mkdir(exist_ok=True)
        for crop, name in zip(inspection.crops, regions["crop"], strict=True):
            _save_png(out / name, crop)
    table["crop"] = ""
    main = regions[regions["region"] == 1]
    table.loc[inspection.regions.loc[main.index, "image"].to_numpy(np.int64), "crop"] = main["crop"].to_numpy()
    written = pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""])
    extra = table.set_index("rank")[["grouped", "regions", "type", "type_distance", "crop"]]
    _write(out / "scores.csv", written.join(extra, on="rank").to_csv(index=False))
    _write(out / "regions.csv", regions.to_csv(index=False))
    write_galleries(inspection, out, types_config.gallery)
    _write(out / "types.csv", _type_table(inspection).to_csv(index=False))
    grouping = inspection.grouping
    if grouping is not None and grouping.choice is not None:
        _write(out / "type_choice.csv", grouping.choice.assign(chosen=grouping.choice.k == grouping.k)
               .to_csv(index=False))
    if grouping is not None and grouping.history is not None:
        _write(out / "type_history.csv", grouping.history.to_csv(index=False))
    config = {**asdict(detect_config), "types": asdict(types_config),
              "type_training": settings_record(grouping) if grouping else None}
    _write(out / "config.json", json.dumps(config, indent=2))
    metrics = {**inspection.metrics, "skipped": len(pile.skipped)}
    _write(out / "metrics.json", json.dumps(metrics, indent=2, default=float))


def _region_table(inspection: Inspection) -> pd.DataFrame:
    """regions.csv: one row per region (numbered from 1, the strongest, in each image) with its image's rank,
    path and label where known, its peak (fractions) and the map's value there, type, type_distance and crop."""
    regions, table, paths = inspection.regions, inspection.table, inspection.pile.paths
    images = regions["image"].to_numpy(np.int64)
    out = pd.DataFrame({"rank": table["rank"].to_numpy()[images], "path": [paths[i] for i in images],
                        "region": regions["region"].to_numpy(np.int64) + 1})
    for column in ("peak_y", "peak_x", "peak", "type", "type_distance"):
        out[column] = regions[column].to_numpy()
    if "label" in table:
        out["label"] = table["label"].to_numpy()[images]
    out["crop"] = [crop_name(int(i), paths[i], int(r)) for i, r in zip(images, regions["region"], strict=True)]
    return out.set_axis(regions.index)


def _type_table(inspection: Inspection) -> pd.DataFrame:
    """One row per type: images (whose strongest region it is), their share of the grouped images, regions of the
    type, its gallery and (labels known) the images' majority label."""
    if inspection.grouping is None:
        return pd.DataFrame(columns=["type", "count", "share", "regions", "gallery"])
    grouped = inspection.table.iloc[inspection.grouped]
    region_types = inspection.regions["type"].to_numpy(np.int64)
    rows = []
    for group in range(inspection.grouping.k):
        members = grouped[grouped["type"] == group]
        regions = int((region_types == group).sum())
        row = {"type": group, "count": len(members), "share": round(len(members) / max(len(grouped), 1), 4),
               "regions": regions, "gallery": gallery_name(group) if regions else ""}
        if "label" in members and len(members):
            counts = members["label"].value_counts()
            row.update(majority=counts.index[0], majority_share=round(counts.iloc[0] / len(members), 4))
        rows.append(row)
    return pd.DataFrame(rows)


def _label_codes(labels: pd.Series | None) -> tuple[np.ndarray | None, list[str] | None]:
    if labels is None:
        return None, None
    codes, names = pd.factorize(labels, sort=True)
    return codes, list(names)


def write_galleries(inspection: Inspection, out: Path, per_type: int) -> None:
    """galleries/type_NN.png: each type's most typical crops, one per region (closest to its centre first),
    captioned with their images' labels where known; galleries/all_types.png: a row per type."""
    from ..plots import montage  # here: matplotlib only when pictures are drawn

    if inspection.grouping is None:
        return
    regions = inspection.regions
    images = regions["image"].to_numpy(np.int64)
    has_labels = "label" in inspection.table
    codes, names = _label_codes(inspection.table["label"].iloc[images] if has_labels else None)
    types = regions["type"].to_numpy(np.int64)
    distances = regions["type_distance"].to_numpy(float)
    (out / GALLERIES).mkdir(exist_ok=True)
    for group in range(inspection.grouping.k):
        members = np.flatnonzero(types == group)
        if not len(members):
            continue
        figure = montage(inspection.crops[members], types[members], None if codes is None else codes[members],
                         names, per_group=per_type, scores=distances[members], group_name="type",
                         title=f"type {group}: {len(members)} regions, most typical first")
        _save_figure(figure, out / gallery_name(group))
    figure = montage(inspection.crops, types, codes, names, per_group=min(per_type, 8), scores=distances,
                     group_name="type", title=f"{inspection.grouping.k} defect types ({inspection.note})")
    _save_figure(figure, out / GALLERIES / "all_types.png")


def _save_figure(figure, path: Path) -> None:
    from matplotlib import pyplot as plt

    with atomic_path(path) as partial:
        figure.savefig(partial, dpi=110, format="png")
    plt.close(figure)


def _save_png(path: Path, image: np.ndarray) -> None:
    picture = Image.fromarray(image[0] if image.shape[0] == 1 else np.transpose(image[:3], (1, 2, 0)))
    with atomic_path(path) as partial:
        picture.save(partial, format="PNG")


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)
