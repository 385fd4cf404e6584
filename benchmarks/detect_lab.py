"""The detection lab: a grid of detection settings over every development pile, one table (issue 19).

    python benchmarks/detect_lab.py --data-root ../shared/datasets --out results/detect/lab.csv.gz

Features are extracted once per pile (offline EfficientNet-Lite2, strides 8, 16 and 32, each 3 x 3-averaged as
`steelnb.patches` does; cached under .cache/lab/) and every setting reuses them. A setting is a feature set,
a scorer, its options and an aggregation; rows hold image AUROC, AP and seconds of scoring per image. The table
then picks the default leave-one-pile-out (`choose`): the setting with the best worst-case AUROC over the other
piles is the one reported on each pile; the piles pasted from DAGM's images (`edge`, `inside`) leave with it. A second
rule, regret (the smallest largest shortfall from each pile's own best), is there to compare (results/detect/
aggregation.md, seventh round). The Severstal sample (37 images, 65 % defective) is a smoke test only.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lab_piles import PILES, load_pile
from score_cache import digest
from sklearn.metrics import average_precision_score, roc_auc_score

from steelnb.backbones import create_backbone
from steelnb.detect import scoring
from steelnb.detect.decision import MAD_TO_STD, label_free_threshold, null_fit
from steelnb.detect.fusion import log_maps
from steelnb.detect.scorers import Mutual, SelfSimilarity
from steelnb.metrics import defect_scores_metrics
from steelnb.patches import feature_levels
from steelnb.views import to_model_input

CHOOSE_ON = ("synthetic", "ksdd", "dagm", "edge", "inside")  # severstal: smoke test only
FAMILIES = {"edge": "dagm", "inside": "dagm"}  # pasted from DAGM class 1's images and defects (lab_piles.py)
RULES = ("worst", "regret")  # how `choose` picks: the best worst case, or the smallest largest shortfall
DECISIONS = (("mad", 3.0), ("null", 3.0), ("null", 2.0))  # label-free rules scored on every row


def extract(name: str, data_root: str, cache: Path, backbone_name: str = "efficientnet_lite2"
            ) -> tuple[dict[int, torch.Tensor], np.ndarray, float]:
    """{stride: (N, h, w, D) float16} of pile `name` (offline `backbone_name`), its defect flags and the forward
    pass's seconds an image, read from `cache` where it holds the pile already: one cache folder a backbone."""
    path = cache / f"{name}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    pile = load_pile(name, data_root)
    backbone = create_backbone(backbone_name, "offline")
    model = backbone.model.eval()
    strides = (8, 16, 32)
    levels = feature_levels(model, strides)
    out = {s: [] for s in strides}
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(pile), 8):
            x = to_model_input(torch.as_tensor(pile.images[start:start + 8]), backbone.mean, backbone.std)
            maps = model.forward_intermediates(x, indices=levels, intermediates_only=True, stop_early=True)
            for s, m in zip(strides, maps, strict=True):
                m = F.avg_pool2d(m, 3, stride=1, padding=1, count_include_pad=True)
                out[s].append(m.permute(0, 2, 3, 1).half())
    seconds = (time.perf_counter() - started) / len(pile)
    result = ({s: torch.cat(v) for s, v in out.items()}, pile.defective.astype(int), seconds)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(result, path)
    return result


class CachedPile(NamedTuple):
    """What the discriminator's and the backbones' benchmarks start from: a pile's stride-16 features from the cache,
    its defect flags, its looks (each image's mean feature: the peers' search) and the first pass's maps (`self`,
    radius 2), the forward pass's seconds an image; the cache folder it was read from, a digest of the features and
    flags read, and the positions in the cached pile of the images it holds (None: every one): what `key` names for the
    score cache (score_cache.py)."""
    features: torch.Tensor
    truth: np.ndarray
    looks: np.ndarray
    first: np.ndarray
    forward_s: float
    folder: Path
    content: str
    positions: np.ndarray | None = None

    def part(self, keep: np.ndarray) -> CachedPile:
        """The pile of the images `keep` (a mask over this pile) selects: every image's first-pass map is its own."""
        index = np.flatnonzero(keep)
        positions = index if self.positions is None else self.positions[index]
        return self._replace(features=self.features[index], truth=self.truth[index], looks=self.looks[index],
                             first=self.first[index], positions=positions)

    def thinned(self, defective: float, seed: int = 0) -> CachedPile:
        """The part that holds every defective image and as many defect-free ones, drawn at random (`seed`), as make
        `defective` of it defective (the nearest whole number): a real pile as heavy as a 40 % stand-in."""
        flawed = self.truth == 1
        wanted = round(flawed.sum() * (1 - defective) / defective)
        normal = np.flatnonzero(~flawed)
        if not 0 < wanted <= len(normal):
            raise ValueError(f"a pile {flawed.mean():.0%} defective cannot be thinned to {defective:.0%}")
        keep = flawed.copy()
        keep[np.random.default_rng(seed).choice(normal, wanted, replace=False)] = True
        return self.part(keep)

    def key(self) -> dict:
        """What names this pile for the score cache: the features' digest and, for a part, its images'."""
        images = "all" if self.positions is None else digest(self.positions.astype(np.int64).tobytes())
        return {"features": self.content, "images": images}


def cached_pile(name: str, cache: Path) -> CachedPile:
    """Pile `name` as `cache` holds it (`extract` fills it), with the default's first pass scored on it."""
    levels, truth, forward_s = torch.load(cache / f"{name}.pt", weights_only=False)
    truth = np.asarray(truth)
    content = digest(levels[16].numpy().tobytes(), truth.astype(np.int64).tobytes())
    features = levels[16].float()
    first = SelfSimilarity(2).maps(features, np.arange(len(truth))).numpy()
    return CachedPile(features, truth, features.mean((1, 2)).numpy(), first, forward_s, cache, content)


def feature_set(levels: dict[int, torch.Tensor], name: str) -> torch.Tensor:
    """(N, h, w, D) float32 on the stride-16 grid: '16', '16+32', '8+16+32' (8 pooled 2 x 2, 32 upsampled);
    a trailing 'n' scales each level to unit mean patch norm over the pile before joining (per-level norm)."""
    normalise = name.endswith("n")
    parts = []
    for stride in map(int, name.rstrip("n").split("+")):
        level = levels[stride].float().permute(0, 3, 1, 2)
        grid = levels[16].shape[1:3]
        level = F.avg_pool2d(level, 2) if stride == 8 else level
        level = F.interpolate(level, grid, mode="bilinear", align_corners=False) if level.shape[-2:] != grid else level
        if normalise:
            level = level / level.norm(dim=1).mean()
        parts.append(level)
    return torch.cat(parts, 1).permute(0, 2, 3, 1).contiguous()


def cell_normalised(maps: torch.Tensor, how: str) -> torch.Tensor:
    """Each grid cell's map values against the pile at that cell: `none`; `zmax` (the package's `--cells zmax`,
    detect/position.py, without its last affine map onto the pile's scale, which ranks the same on the map itself:
    the cell's median subtracted, divided by the larger of the cell's and the pile's spread); tried here besides:
    `z` (the cell's median and MAD) and `sub` (its median subtracted)."""
    if how == "none":
        return maps
    median = maps.median(0).values
    deviation = (maps - median).abs()
    if how == "sub":
        return maps - median
    if how == "zmax":
        pile_spread = MAD_TO_STD * float((maps - maps.median()).abs().median())
        return (maps - median) / (MAD_TO_STD * deviation.median(0).values).clamp(min=max(pile_spread, 1e-6))
    return (maps - median) / (deviation.median(0).values * MAD_TO_STD + 1e-6)


def image_scores(maps: torch.Tensor, top_share: float = 0.01, sigma: float = 0) -> np.ndarray:
    """The package's image score (detect/scoring.py): maps smoothed by `sigma` cells, the mean of the top share."""
    return scoring.image_scores(maps, sigma=sigma, top_share=top_share)


def maps_of(levels: dict[int, torch.Tensor], setting: dict, seed: int = 0, batch: int = 16) -> torch.Tensor:
    """Anomaly maps (N, h, w) of one map setting (see MAP_SETTINGS), by the package's own scorers: the cached
    features stand in for the extractor, image indices for the images."""
    features = feature_set(levels, setting["features"])
    index = np.arange(len(features))
    if setting["scorer"] == "self":
        scorer = SelfSimilarity(setting["radius"])
    else:
        scorer = Mutual(seed=seed, batch_size=batch, window=setting.get("window"))
    scorer.prepare(index, lambda chosen: features[chosen])
    return torch.cat([scorer.maps(features[start:start + batch], index[start:start + batch])
                      for start in range(0, len(index), batch)])


MAP_SETTINGS = [
    *({"features": f, "scorer": "self", "radius": r}
      for f, r in itertools.product(("16", "16+32", "16+32n"), (1, 2, 3, 6))),
    {"features": "16", "scorer": "mutual", "window": None},
    *({"features": "16+32n", "scorer": "mutual", "window": win} for win in (None, 0.25, 0.1)),
]
AGGREGATIONS = [{"top": t, "cells": c, "sigma": s}
                for t, c, s in itertools.product((0.01, 0.03), ("none", "z", "sub", "zmax"), (0, 1, 2))]


def label(setting: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in setting.items())


def pile_maps(name: str, data_root: str, cache: Path) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Every map setting's maps of pile `name` (cached under `cache`) and the seconds an image each took."""
    path = cache / f"{name}_maps.pt"
    stored = torch.load(path, weights_only=False) if path.exists() else {"maps": {}, "seconds": {}}
    missing = [s for s in MAP_SETTINGS if label(s) not in stored["maps"]]
    if missing:
        levels, truth, _ = extract(name, data_root, cache)
        for setting in missing:
            started = time.perf_counter()
            stored["maps"][label(setting)] = maps_of(levels, setting).half()
            stored["seconds"][label(setting)] = (time.perf_counter() - started) / len(truth)
            print(name, label(setting), round(stored["seconds"][label(setting)], 3), flush=True)
        torch.save(stored, path)
    wanted = [label(s) for s in MAP_SETTINGS]
    return {k: stored["maps"][k].float() for k in wanted}, {k: stored["seconds"][k] for k in wanted}


def pile_rows(name: str, found: dict[str, torch.Tensor], seconds: dict[str, float], truth: np.ndarray,
              forward_s: float) -> list[dict]:
    """Every aggregation of every map setting, and each self / mutual pair fused at the map level (the mean of
    both maps' robust z of the log). `space=log`: cells normalised on the log map (or the fused z), the image
    score the top share's mean of its exp (the package's pipeline); `lin`: on the map itself (or the z)."""
    rows = []
    pairs = itertools.product([k for k in found if "self" in k], [k for k in found if "mutual" in k])
    fused = {f"fuse[{a} | {b}]": (log_maps(torch.stack([found[a], found[b]], 1)), seconds[a] + seconds[b])
             for a, b in pairs}
    for key, (maps, spent) in {**{k: (v, seconds[k]) for k, v in found.items()}, **fused}.items():
        logs = maps if key.startswith("fuse") else maps.clamp(min=1e-6).log()
        for aggregation, space in itertools.product(AGGREGATIONS, ("lin", "log")):
            linear = maps if space == "lin" else None
            post = cell_normalised(linear, aggregation["cells"]) if linear is not None else \
                cell_normalised(logs, aggregation["cells"]).clamp(max=80).exp()
            scores = image_scores(post, aggregation["top"], aggregation["sigma"])
            rows.append(_row(name, f"{key} {label(aggregation)} space={space}", truth, scores, spent, forward_s))
    return rows


def run(piles: list[str], data_root: str, cache: Path) -> pd.DataFrame:
    rows = []
    for name in piles:
        found, seconds = pile_maps(name, data_root, cache)
        _, truth, forward_s = extract(name, data_root, cache)
        rows += pile_rows(name, found, seconds, truth, forward_s)
    return pd.DataFrame(rows)


def _row(pile: str, setting: str, truth: np.ndarray, scores: np.ndarray, seconds: float, forward_s: float) -> dict:
    row = {"pile": pile, "setting": setting, "auroc": roc_auc_score(truth, scores),
           "ap": average_precision_score(truth, scores), "score_s_per_image": seconds,
           "forward_s_per_image": forward_s, "all_defect_free_acc": 1 - truth.mean(),
           "null_defective_share": null_fit(scores).defective_share}
    for rule, cutoff in DECISIONS:
        found = defect_scores_metrics(truth, scores, label_free_threshold(scores, rule, cutoff))
        row.update({f"{rule}{cutoff:g}_{k}": found[k] for k in ("acc", "mdr", "fdr")})
    return row


def choose(table: pd.DataFrame, piles: tuple[str, ...] = CHOOSE_ON, rule: str = "worst", value: str = "auroc"
           ) -> pd.DataFrame:
    """Leave one pile out: for each pile P, the setting that `rule` picks over the piles outside P's family
    (`family`: a pile built from another's images leaves with it; none where no other pile is left), its `value`
    (AUROC, or any column where higher is better) on P, and P's in-sample best; then the setting chosen over every
    pile (columns `value` and `in_sample_<value>`).

    `worst`: the best worst-case value; `regret`: the smallest largest shortfall from each pile's own best (a
    rule that a hard pile's low value does not rule).

    >>> table = pd.DataFrame({"pile": ["ksdd", "ksdd", "dagm", "dagm", "edge", "edge"], "setting": list("ababab"),
    ...                       "auroc": [0.95, 0.94, 0.92, 0.97, 0.92, 0.97]})
    >>> choose(table, ("ksdd", "dagm", "edge"))[["pile", "chosen_without_it", "auroc"]].values.tolist()
    [['ksdd', 'b', 0.94], ['dagm', 'a', 0.92], ['edge', 'a', 0.92], ['all', 'b', nan]]
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    wide = table.pivot(index="setting", columns="pile", values=value)
    present = [p for p in piles if p in wide]
    shortfall = wide[present].max() - wide[present]
    rows = []
    for pile in present:
        others = [p for p in present if family(p) != family(pile)]
        chosen = _chosen(wide, shortfall, others, rule) if others else ""  # "": no other pile to choose on
        rows.append({"pile": pile, "chosen_without_it": chosen, value: wide.at[chosen, pile] if chosen else np.nan,
                     "in_sample_best": wide[pile].idxmax(), f"in_sample_{value}": wide[pile].max()})
    rows.append({"pile": "all", "chosen_without_it": _chosen(wide, shortfall, present, rule), value: np.nan,
                 "in_sample_best": "", f"in_sample_{value}": np.nan})
    return pd.DataFrame(rows)


def _chosen(wide: pd.DataFrame, shortfall: pd.DataFrame, over: list[str], rule: str) -> str:
    """The setting `rule` picks over the piles `over`, among the settings scored on every one of them."""
    scored = wide[over].notna().all(axis=1)
    if not over or not scored.any():
        raise ValueError(f"no setting is scored on every pile chosen on ({', '.join(over) or 'none'})")
    score = -wide[over].min(axis=1) if rule == "worst" else shortfall[over].max(axis=1)
    return str(score[scored].idxmin())


def family(pile: str) -> str:
    """The pile whose images `pile` is built from (itself where none; a pile's defect-free part, `<pile>-clean`,
    is built from the pile): they leave a choice together."""
    base = pile.removesuffix("-clean")
    return FAMILIES.get(base, base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--piles", default=",".join(PILES))
    parser.add_argument("--cache", default=".cache/lab")
    parser.add_argument("--out", default="results/detect/lab.csv.gz", help="the table (gzip where it ends in .gz)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    table = run(args.piles.split(","), args.data_root, Path(args.cache))
    table["machine"] = f"{platform.machine()} {torch.get_num_threads()} threads"
    table.to_csv(args.out, index=False, float_format="%.4g")
    if not set(CHOOSE_ON) & set(table.pile):  # e.g. a built pile alone: its features cached, nothing to choose on
        return
    choice = choose(table)
    choice.to_csv(Path(args.out).with_name(Path(args.out).name.split(".")[0] + "_choice.csv"), index=False)
    print(choice.to_string())


if __name__ == "__main__":
    main()
