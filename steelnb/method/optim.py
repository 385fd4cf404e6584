"""The optimisers a run can name and the learning-rate schedule of the extractor."""

from __future__ import annotations

import torch

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam,
              "nadam": torch.optim.NAdam, "sgd": torch.optim.SGD}


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Optimiser `name` of `OPTIMIZERS` over `params` (SGD with momentum 0.9)."""
    extra = {"momentum": 0.9} if name == "sgd" else {}
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, **extra)


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LinearLR warm-up, then CosineAnnealingLR to the end (stepped once per extractor update)."""
    warmup_steps = max(1, min(warmup_steps, total_steps - 1))
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup_steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
