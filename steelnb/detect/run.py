"""One detection run: read a pile, map every image's anomalies, score, decide, and write what a person reads.

    pile (any named set or image folder, read at its own aspect)
      -> patch features (`steelnb.patches`, tiled when large, levels balanced on a sample of the pile)
      -> `self`, where asked (`--whiten`): whitened in the pile's units, fitted on every image (`whiten.py`)
      -> a scorer's maps (`scorers/`; `fused`: two maps joined on one scale, `fusion.py`; `self` at
         `--self-radius 0`: the radius of SELF_RADII whose maps rank the pile's top farthest above its bulk)
      -> `self`: a second pass, the nearer of each patch's own-image and clean-bank distances (`rescore.py`)
      -> `self`: a patch discriminator trained on the pile's most normal images, its maps joined to the scorer's
         (`discriminator.py`, `fusion.py`; `--discriminator 0`: off)
      -> each cell against the pile at that place (`position.py`)
      -> image scores and peaks (`scoring.py`), each score against its look-alikes' (`peers.py`)
      -> a label-free threshold (`decision.py`)
      -> scores.csv, metrics.json, overlays/ (`write_detection`)

No label is used to score or decide; labels, where the pile has them, only measure the answer (AUROC, AP, the decisions'
ACC / MDR / FDR / EACC, where the map's peak falls for sets with defect outlines). Memory: the pile's uint8 images, one
float32 map per image and the scorer's references; patch features exist one batch at a time, except that the second
pass, the whitening and the discriminator keep the first's (float16) while they fit in `rescore.KEEP_BYTES`; the second
pass keeps each patch's nearest bank patch (its distance and image: 8 bytes) for the next round.

>>> config = DetectConfig(dataset="synthetic", max_side=64, method="self", backbone="resnet18", weights="random",
...                       device="cpu")
>>> from steelnb.data import load_dataset
>>> result = detect(config, load_dataset("synthetic", image_size=64, n_images=6))
>>> len(result.table), sorted(result.table["rank"])
(6, [1, 2, 3, 4, 5, 6])
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score
from torch import Tensor

from .. import distributed
from ..backbones import create_backbone, resolve_device
from ..data import ImageSet
from ..data.masks import defect_masks
from ..method.runfiles import run_info
from ..metrics import defect_scores_metrics
from ..patches import PatchFeatures
from ..progress import progress
from .config import DetectConfig
from .decision import label_free_threshold
from .discriminator import EPOCHS, STEPS, clean_share, discriminator_maps
from .errors import DetectError
from .fusion import log_maps
from .overlay import write_overlays
from .peers import against_peers, alike, peers_of
from .pile import load_pile
from .position import MIN_PILE, cell_normalised, cells_for_pile
from .record import (
    MAPS,
    OVERLAYS,
    STRIP,
    Detection,
    _calibrated,
    _rates,
    _write,
    label_free_record,
    overlay_rows,
    save_maps,
)
from .rescore import CleanBank, KeptFeatures, clean_images
from .scorers import SelfSimilarity, make_scorer
from .scoring import RANKING_SHARE, distinct_shares, farthest_reaching, image_scores, peaks, smooth
from .whiten import fit_whitening

OVERLAP = 128  # pixels neighbouring tiles share (at most half a tile, for tiles under 256 pixels)
BALANCE_SAMPLE = 16  # images of the pile that balance the feature levels
MAX_LOG = 80.0  # a joined or cell-normalised log map is capped here before exp (float32 holds exp(88))
SELF_RADII = (1, 2, 6)  # the radii `--self-radius 0` chooses from (benchmarks/detect_radius.py)


def detect(config: DetectConfig, data: ImageSet | None = None) -> Detection:
    """Score every image of the pile (`data`, else the one `config` names) without using any label."""
    started = time.perf_counter()
    tile, overlap = _tiling(config)
    data = load_pile(config) if data is None else data
    if len(data) == 0:
        raise DetectError(f"{data.name}: the pile holds no image")
    loaded = time.perf_counter()
    device = distributed.local_device(resolve_device(config.device))  # under torchrun: this process's own GPU
    torch.manual_seed(config.seed)
    extractor = PatchFeatures(create_backbone(config.backbone, config.weights), config.stride_list, tile, overlap,
                              device=device)
    if config.balance_levels:
        extractor.balance_levels(data.images[_sample(len(data), config.seed)])
    mine, why_not, unwhitened = distributed.shard(len(data)), _no_rescore(config, len(data)), _no_whitening(config)
    undiscriminated = _no_discriminator(config, len(data))
    features = KeptFeatures(lambda index: extractor(data.images[index]), len(mine),
                            enabled=why_not is None or unwhitened is None or undiscriminated is None)
    whitening = f"off ({unwhitened})" if unwhitened else _whitened(features, mine, len(data), config)
    scorer = make_scorer(config)
    scorer.prepare(data.images, extractor)
    prepared = time.perf_counter()
    raw, radius = _first_pass(mine, features if unwhitened else features.again, scorer, config)
    rescored = {"used": False, "why": why_not} if why_not else None
    if rescored is None:
        raw, rescored = _rescore(raw, features, mine, config)
    discriminated = {"used": False, "why": undiscriminated} if undiscriminated else None
    if discriminated is None:
        raw, discriminated = _discriminated(raw, features, mine, config)
    maps, smoothed, cells_used, reliability = _smoothed(raw, config, (1.0, config.discriminator)
                                                        if discriminated["used"] else None)
    scores, maps, smoothed, shared, peered = _image_scores(maps, smoothed, features, mine, config)
    scored = time.perf_counter()
    threshold = label_free_threshold(scores, config.rule, config.cutoff)
    table = _table(data, scores, threshold, peaks(smoothed))
    seconds = {"load_s": loaded - started, "prepare_s": prepared - loaded, "score_s": scored - prepared,
               "total_s": time.perf_counter() - started}
    seconds["s_per_image"] = (seconds["prepare_s"] + seconds["score_s"]) / len(data)
    metrics = {"pile": data.name, "n_images": len(data), "image_shape": list(data.images.shape[1:]),
               "grid": list(maps.shape[1:]), "method": config.method, "self_radius": radius, "cells": config.cells,
               "cells_used": cells_used, "position_reliability": reliability, "rescore": rescored,
               "discriminator": discriminated,
               "top_share": shared, "peers": peered,
               "level_scales": list(extractor.scales or ()), "whitening": whitening,
               "run": {**run_info(extractor.backbone, device, seconds["total_s"]),
                       **{k: round(v, 3) for k, v in seconds.items()}},
               **_decision_metrics(data, table, threshold, config)}
    return Detection(table, maps, metrics, threshold)


def _first_pass(mine: np.ndarray, features: Callable[[np.ndarray], Tensor], scorer, config: DetectConfig
                ) -> tuple[np.ndarray, dict | None]:
    """The scorer's raw maps and, for `self` and `fused`, the radius used: at `--self-radius 0` (`self`) the one of
    SELF_RADII whose image scores (as a pass before the last ranks the pile) reach farthest
    (scoring.farthest_reaching: the smallest on a tie), a radius that a defect's size does not outgrow, with each
    radius's reach."""
    if config.method not in ("self", "fused"):
        return _score_maps(mine, features, scorer, config.batch_size), None
    if config.self_radius:
        return (_score_maps(mine, features, scorer, config.batch_size),
                {"used": config.self_radius, "why": f"--self-radius {config.self_radius}"})
    every_radius = SimpleNamespace(maps=lambda batch, index: SelfSimilarity().maps_at(batch, SELF_RADII))
    every = _score_maps(mine, features, every_radius, config.batch_size)  # one distance matrix for every radius
    used, reaches = farthest_reaching({radius: _scored(np.ascontiguousarray(every[:, i]), config)
                                       for i, radius in enumerate(SELF_RADII)})
    return np.ascontiguousarray(every[:, SELF_RADII.index(used)]), {"used": used, "chosen_from": list(SELF_RADII),
                        "reach": {str(radius): round(value, 3) for radius, value in reaches.items()}}


def _smoothed(raw: np.ndarray, config: DetectConfig, weights: tuple[float, ...] | None = None
              ) -> tuple[np.ndarray, Tensor, str, float | None]:
    """The scorer's raw maps with each cell against the pile (`_pile_maps`: several joined at `weights`, where
    given), their smoothed copy, the cells used and the pile's position reliability."""
    maps, cells_used, reliability = _pile_maps(raw, config.cells, weights)
    return maps, smooth(torch.from_numpy(maps).float(), config.sigma), cells_used, reliability


def _scored(raw: np.ndarray, config: DetectConfig) -> np.ndarray:
    """Image scores of the scorer's raw maps at the given share (RANKING_SHARE where the pile chooses it): what a
    pass before the last ranks the pile by."""
    return image_scores(_smoothed(raw, config)[1], sigma=0, top_share=_fixed_share(config))


def _fixed_share(config: DetectConfig) -> float:
    """The share given (`--top-share`), or RANKING_SHARE where the pile chooses it."""
    return config.top_share or RANKING_SHARE


def _no_rescore(config: DetectConfig, n: int) -> str | None:
    """Why the second pass (rescore.py) does not run on this pile, or None when it does."""
    why = _no_clean_images("rescore", config.rescore, config, n, "the second pass joins self's own-image references "
                           "only")
    if why is None and int(config.rescore * n) < 2:
        return f"{n} images: fewer than 2 clean images to lend their patches (--rescore {config.rescore})"
    return why


def _no_clean_images(flag: str, value: float, config: DetectConfig, n: int, self_only: str) -> str | None:
    """Why a step that learns from the pile's most normal images (`--flag value`) does not run: off, a scorer
    other than self (`self_only` says why), or a pile too small; None when it runs."""
    if value == 0:
        return f"--{flag} 0"
    if config.method != "self":
        return f"--method {config.method}: {self_only}"
    if n < MIN_PILE:
        return f"{n} images: fewer than {MIN_PILE}, too few for the most normal of them to stand for the pile"
    return None


def _rescore(raw: np.ndarray, features: KeptFeatures, mine: np.ndarray,
             config: DetectConfig) -> tuple[np.ndarray, dict]:
    """The second pass, `config.rescore_rounds` times: each patch's nearer distance, its own image's (`raw`) or the
    clean bank's (rescore.py), the clean images being the `config.rescore` share that the previous round ranks
    lowest (the first pass, then the last join)."""
    joined, clean, changed = raw, np.empty(0, np.int64), []
    bank = CleanBank(config.rescore_patches, config.seed, config.batch_size)
    for _ in range(config.rescore_rounds):
        previous, clean = clean, clean_images(_scored(joined, config), config.rescore)
        if np.array_equal(clean, previous):  # the same clean images: the same bank, the same maps
            break
        changed.append(len(np.setdiff1d(clean, previous)))
        bank.update(len(raw), clean, features.again, mine)
        joined = np.minimum(raw, _score_maps(mine, features.again, bank, config.batch_size))
    searched = bank.full_share()
    return joined, {"used": True, "share": config.rescore, "rounds": len(changed), "clean_images": len(clean),
                    "clean_images_new_each_round": changed, "bank_patches": bank.size,
                    "searched_in_full_after_the_first": None if searched is None else round(searched, 4),
                    "features": features.record()}


def _no_discriminator(config: DetectConfig, n: int) -> str | None:
    """Why the discriminator (discriminator.py) does not join the maps, or None when it does."""
    return _no_clean_images("discriminator", config.discriminator, config, n, "the discriminator joins self's maps "
                            "only")


def _discriminated(raw: np.ndarray, features: KeptFeatures, mine: np.ndarray,
                   config: DetectConfig) -> tuple[np.ndarray, dict]:
    """The scorer's (N, h, w) raw maps and the discriminator's, (N, 2, h, w), the discriminator trained on the share
    of the pile that `raw` ranks most normal that the pile's estimated defective share gives (`clean_share`); what
    metrics.json says of it."""
    started = time.perf_counter()
    ranked = _scored(raw, config)
    share, estimate = clean_share(ranked)
    clean = clean_images(ranked, share)
    found, batches = discriminator_maps(features.again, clean, len(raw), mine, config.discriminator_noise, EPOCHS,
                                        config.seed, config.batch_size)
    return np.stack([raw, found], 1), {"used": True, "weight": config.discriminator,
                                       "noise": config.discriminator_noise, "epochs": EPOCHS, "steps": STEPS,
                                       "batches": batches, "share": round(share, 4),
                                       "estimated_defective_share": None if estimate is None else round(estimate, 4),
                                       "clean_images": len(clean),
                                       "seconds": round(time.perf_counter() - started, 3)}


def _image_scores(maps: np.ndarray, smoothed: Tensor, features: KeptFeatures, mine: np.ndarray, config: DetectConfig
                  ) -> tuple[np.ndarray, np.ndarray, Tensor, dict[str, Any], dict[str, Any]]:
    """The image scores: each image's top share of smoothed cells, at the share given or at each of AUTO_SHARES
    (those that take distinct cells: scoring.py), set against its peers' (peers.py) where `config.peers` asks for
    it and the pile holds enough images, then the share chosen whose scores reach farthest; each image's maps scaled
    as its score was by its peers (the top share's mean scales with them: every map's image score stays its image's
    score, and one threshold reads both; the peaks stay where they were); what metrics.json says of the share and of
    the peers."""
    why_given = _no_share_choice(smoothed, config)
    shares = (_fixed_share(config),) if why_given else distinct_shares(maps[0].size)
    candidates = {share: image_scores(smoothed, sigma=0, top_share=share) for share in shares}
    why = _no_peers(candidates, config)
    looks = None if why else features.pile_looks(mine)
    if looks is not None and alike(looks):
        why = "every image looks the same"
    peers = None if why else peers_of(looks, config.peers)  # one search for every share's scores
    peered = candidates if why else {share: against_peers(scores, peers, config.peer_weight)
                                     for share, scores in candidates.items()}
    share, reaches = farthest_reaching(peered)
    shared = {"used": share, "why": why_given} if why_given else \
        {"used": share, "chosen_from": list(shares), "reach": {str(s): round(r, 3) for s, r in reaches.items()}}
    if why:
        return peered[share], maps, smoothed, shared, {"used": False, "why": why}
    scaled = _map_scale(peered[share], candidates[share])
    return (peered[share], maps * scaled, smoothed * torch.from_numpy(scaled), shared,
            {"used": True, "k": config.peers, "weight": config.peer_weight})


def _map_scale(peered: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N, 1, 1) float32 factors that take each image's score to its peered score (1 where the score is 0), at most
    float32's largest: a score of almost nothing among busy peers must not make its map infinite.

    >>> _map_scale(np.array([2.0, 1e-9, 0.0]), np.array([1.0, 1e-300, 0.0])).ravel().tolist()[::2]
    [2.0, 1.0]
    """
    scale = np.divide(peered, scores, out=np.ones_like(peered), where=scores > 0)
    return np.minimum(scale, np.finfo(np.float32).max).astype(np.float32)[:, None, None]


def _no_share_choice(smoothed: Tensor, config: DetectConfig) -> str | None:
    """Why the image score's share is not chosen from the pile (scoring.py), or None when it is."""
    if config.top_share:
        return f"--top-share {config.top_share:g}"
    if len(smoothed) < MIN_PILE:
        return (f"{len(smoothed)} images: fewer than {MIN_PILE}, too few to choose the share from; "
                f"{RANKING_SHARE:g} taken")
    if not torch.isfinite(smoothed).all():
        return f"some map values are not finite numbers: no share's reach can be read; {RANKING_SHARE:g} taken"
    return None


def _no_peers(candidates: dict[float, np.ndarray], config: DetectConfig) -> str | None:
    """Why the image scores (`candidates`: share -> scores) are not set against their peers' (peers.py), or None
    when they are."""
    n = len(next(iter(candidates.values())))
    if config.peers == 0:
        return "--peers 0"
    if n < max(MIN_PILE, config.peers + 1):
        return (f"{n} images: fewer than {max(MIN_PILE, config.peers + 1)}, too few for {config.peers} "
                f"peers of each to stand for its kind")
    if not all(np.isfinite(scores).all() for scores in candidates.values()):
        return "some image scores are not finite numbers"
    return None


def _no_whitening(config: DetectConfig) -> str | None:
    """Why the features are not whitened (whiten.py), or None when they are."""
    if config.whiten == 0:
        return "--whiten 0"
    if config.method != "self":
        return f"--method {config.method}: the lab chose the whitening for self only"
    return None


def _whitened(features: KeptFeatures, mine: np.ndarray, n: int, config: DetectConfig) -> dict[str, Any]:
    """Whiten every feature `features` hands out in the pile's units (whiten.py), fitted on patches of every image
    (which `features` keeps for the scoring that follows); what metrics.json says of it."""
    whitening = fit_whitening(features, mine, n, config.whiten, config.whiten_shrink, config.seed,
                              config.batch_size)
    features.transform = whitening
    dimensions, directions = whitening.projection.shape
    return {"keep": config.whiten, "shrink": config.whiten_shrink, "patches": whitening.patches,
            "directions": directions, "of": dimensions, "features": features.record()}


def _sample(n: int, seed: int, size: int = BALANCE_SAMPLE) -> np.ndarray:
    """The seeded sample of the pile that balances the feature levels (the same on every process)."""
    return np.sort(np.random.default_rng(seed).choice(n, min(size, n), replace=False))


def _pile_maps(maps: np.ndarray, cells: str, weights: tuple[float, ...] | None = None
               ) -> tuple[np.ndarray, str, float | None]:
    """The pile's (N, h, w) maps from the scorer's (N, h, w), or its (N, S, h, w) joined on one scale (the fused z,
    weighted by `weights` where given, back to a positive scale by exp after its cells are normalised), each cell
    against the pile at that place where `cells` (or the pile, for auto) says so (position.py); the normalisation
    used and the pile's reliability."""
    joined = torch.from_numpy(maps) if maps.ndim == 3 else log_maps(torch.from_numpy(maps), weights)
    used, reliability = cells_for_pile(joined, cells)
    normalised = cell_normalised(joined, used)
    if maps.ndim == 3:
        return (maps if used == "none" else normalised.clamp(min=0).numpy()), used, reliability
    return normalised.clamp(max=MAX_LOG).exp().numpy(), used, reliability


def _tiling(config: DetectConfig) -> tuple[int, int]:
    """The tile and the overlap of neighbouring tiles, in pixels (DetectConfig keeps tiles on the coarsest stride)."""
    align = max(config.stride_list)
    return config.tile, min(OVERLAP, config.tile // 2 // align * align)


def _score_maps(mine: np.ndarray, features: Callable[[np.ndarray], Tensor], scorer, batch_size: int) -> np.ndarray:
    """float32 (N, h, w) anomaly maps of every image (`features` by image index), a batch at a time. Under
    torchrun each process maps its shard `mine` of the pile (against the same prepared references) and the maps
    are gathered on every process."""
    maps = None
    starts = range(0, len(mine), batch_size)
    for start in progress(starts, f"scoring {len(mine)} images", total=len(starts), unit="batch"):
        index = mine[start:start + batch_size]
        batch = scorer.maps(features(index), index).numpy()
        if maps is None:
            maps = np.empty((len(mine), *batch.shape[1:]), np.float32)
        maps[start:start + len(index)] = batch
    return distributed.gather(np.empty((0,), np.float32) if maps is None else maps)


def _table(data: ImageSet, scores: np.ndarray, threshold: float, peak: np.ndarray) -> pd.DataFrame:
    """One row per image: path, score, rank (1 = most anomalous), decision, peak, and truth where known."""
    rank = np.empty(len(scores), np.int64)
    rank[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    table = pd.DataFrame({"path": data.paths, "score": scores, "rank": rank,
                          "defective": (scores > threshold).astype(int),
                          "peak_y": peak[:, 0].round(4), "peak_x": peak[:, 1].round(4)})
    if data.has_defect_flags:
        table["truth"] = data.defective.astype(int)
    if data.has_labels:
        table["label"] = [data.class_names[i] for i in data.labels]
    return table


def _decision_metrics(data: ImageSet, table: pd.DataFrame, threshold: float, config: DetectConfig) -> dict:
    """The label-free decision; where the pile has defect flags, how good the scores and decisions are."""
    scores = table["score"].to_numpy()
    out = {"label_free": label_free_record(scores, threshold, config, warn=distributed.world().main)}
    if not data.has_defect_flags:
        out["scored"] = f"not scored: {data.name} has no defect / defect-free labels"
        return out
    truth = data.defective.astype(int)
    rate = float(truth.mean())
    out["defect_rate"] = rate
    if rate in (0.0, 1.0):
        out["scored"] = f"not scored: every image of {data.name} is {'defective' if rate else 'defect-free'}"
        return out
    out["auroc"] = defect_scores_metrics(truth, scores)["auroc"]
    out["ap"] = float(average_precision_score(truth, scores))
    out["label_free"].update(_rates(truth, scores, threshold))
    out["everything_defect_free"] = {"acc": 1 - rate, "mdr": rate, "fdr": 0.0, "eacc": 1 - rate}
    out["calibrated"] = _calibrated(truth, scores, config)
    height, width = data.images.shape[-2:]
    masks = defect_masks(data, (max(1, height // 4), max(1, width // 4)))  # the peak is a fraction: coarse will do
    if masks is not None:
        out["localisation"] = _localisation(masks, table)
    return out


def _localisation(masks: np.ndarray, table: pd.DataFrame) -> dict:
    """Share of the defective images with an outline whose map peak lies in it (or within 2 % of the image)."""
    height, width = masks.shape[-2:]
    pad_y, pad_x = max(1, round(0.02 * height)), max(1, round(0.02 * width))
    hits = []
    for i in np.flatnonzero(masks.any(axis=(1, 2))):
        y, x = int(table["peak_y"].iat[i] * height), int(table["peak_x"].iat[i] * width)
        hits.append(bool(masks[i, max(0, y - pad_y):y + pad_y + 1, max(0, x - pad_x):x + pad_x + 1].any()))
    return {"peak_in_defect": float(np.mean(hits)) if hits else float("nan"), "n": len(hits)}


def write_detection(detection: Detection, data: ImageSet, config: DetectConfig, out: Path) -> None:
    """scores.csv (with each overlay's file), metrics.json, config.json, skipped.csv, maps.npz and overlays/ (the
    top-ranked images and those around the threshold) into `out`; an overlays/ already there (an earlier detection
    written into `out`) is replaced, so that every overlay is one scores.csv names."""
    shutil.rmtree(out / OVERLAYS, ignore_errors=True)
    table = detection.table.copy()
    table["overlay"] = ""
    count = len(table) if config.all_overlays else min(config.overlays, len(table))
    rows = overlay_rows(table, count, STRIP if count else 0)  # --overlays 0: none at all
    write_overlays(table, rows, detection.maps, data.images, config.sigma, out)
    save_maps(out / MAPS, detection.maps, data.paths)
    _write(out / "scores.csv", table.sort_values("rank").to_csv(index=False))
    _write(out / "skipped.csv", pd.DataFrame(list(data.skipped), columns=["path", "reason"]).to_csv(index=False))
    _write(out / "config.json", json.dumps(asdict(config), indent=2))
    metrics = {**detection.metrics, "skipped": len(data.skipped)}
    _write(out / "metrics.json", json.dumps(metrics, indent=2, default=float))


