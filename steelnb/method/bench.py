"""One epoch, taken apart: where the time goes, and the loop's speed next to the bare model's.

Everything is measured side by side in one process, so the ratios hold on any machine:
- decode: files -> uint8 array with the cache off (file-based data sets only);
- extract / cluster / train: the three phases of one epoch of `Trainer`;
- augment: multi-crop alone over the epoch's batches;
- bare model: the same forward/backward work as the loop (same crops, same extractor_every pattern,
  same head) on views made beforehand, with no data handling at all.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import torch

from ..data import ImageSet, load_dataset
from .config import TrainConfig
from .heads import make_head
from .losses import pseudo_label_loss
from .train import Trainer, group_by_size


def _timed(fn, *args):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def decode_seconds(config: TrainConfig) -> float | None:
    """Seconds to decode the data set's files with the cache off (None for generated data)."""
    if config.dataset == "synthetic":
        return None
    previous = os.environ.get("STEELNB_CACHE")
    os.environ["STEELNB_CACHE"] = "off"
    try:
        return _timed(load_dataset, config.dataset, config.data_root, config.image_size)[1]
    finally:
        os.environ.pop("STEELNB_CACHE") if previous is None else os.environ.update(STEELNB_CACHE=previous)


def bare_model_seconds(trainer: Trainer, views: list[list[torch.Tensor]], features, pseudo) -> float:
    """The loop's model work (forward, backward every k steps, head) on ready-made views."""
    config = trainer.config
    model = trainer.backbone.model.train()
    head = make_head(trainer.backbone.num_features, config.n_clusters, config.head, config.temperature,
                     features, pseudo).to(trainer.device)
    targets = torch.zeros(config.batch_size, dtype=torch.long, device=trainer.device)

    def work():
        for step, crops in enumerate(views):
            with torch.set_grad_enabled(step % config.extractor_every == 0):
                features = torch.cat([model(batch) for batch in group_by_size(crops)])
            pseudo_label_loss(head(features), targets.repeat(len(crops))).backward()

    return _timed(work)[1]


def bench_epoch(config: TrainConfig, data: ImageSet) -> dict:
    """Seconds per phase of one epoch and the loop-versus-bare-model speed ratio."""
    config = replace(config, epochs=1)
    trainer = Trainer(config, data)
    features, extract_s = _timed(trainer.features)
    points = trainer.preprocessor(features, config.seed).transform(features)
    clustering, cluster_s = _timed(trainer.cluster, points, config.n_clusters, config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    draw = np.random.default_rng(config.seed)
    batches = [trainer.batch(draw.integers(0, len(data), config.batch_size)) for _ in range(trainer.steps)]
    views, augment_s = _timed(lambda: [trainer.views(batch, generator) for batch in batches])
    bare_s = bare_model_seconds(trainer, views, features, clustering.labels)
    _, train_s = _timed(trainer._train_on, features, clustering.labels, config.seed, 0)
    images = trainer.steps * config.batch_size
    epoch_s = extract_s + cluster_s + train_s
    return {
        "images": len(data), "steps": trainer.steps, "batch_size": config.batch_size,
        "device": str(trainer.device), "threads": torch.get_num_threads(),
        "decode_s": decode_seconds(config), "extract_s": extract_s, "cluster_s": cluster_s,
        "augment_s": augment_s, "train_s": train_s, "bare_model_s": bare_s,
        "cluster_share": cluster_s / epoch_s,
        "loop_img_s": images / train_s, "bare_model_img_s": images / bare_s,
        "loop_vs_bare": bare_s / train_s,
        "augment_share_of_train": augment_s / train_s,
    }


def format_report(report: dict) -> str:
    lines = [f"{k:>24}: {v:.3f}" if isinstance(v, float) else f"{k:>24}: {v}" for k, v in report.items()]
    lines.append(f"clustering is {report['cluster_share']:.1%} of the epoch (target <= 5 %); the loop runs at "
                 f"{report['loop_vs_bare']:.1%} of the bare model's speed (target >= 90 %)")
    return "\n".join(lines)


def median_report(config: TrainConfig, data: ImageSet, repeats: int = 1) -> dict:
    """bench_epoch `repeats` times (after one warm-up when repeats > 1); the median of each number."""
    if repeats > 1:
        bench_epoch(config, data)
    reports = [bench_epoch(config, data) for _ in range(repeats)]
    return {k: (float(np.median([r[k] for r in reports])) if isinstance(v, float) else v)
            for k, v in reports[0].items()}
