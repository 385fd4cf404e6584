"""The optimisers a run can name, with the options of ours each takes, and the extractor's learning-rate schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated

import torch

from .. import validation
from ..validation import AtLeast, Options

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam,
              "nadam": torch.optim.NAdam, "sgd": torch.optim.SGD}


@dataclass(frozen=True)
class SGDOptions(Options):
    """SGD's momentum (torch's default is none)."""

    momentum: Annotated[float, AtLeast(0)] = 0.9


# The optimisers with settings of ours (a run records them in config.json: `TrainConfig.optimizer_options`);
# the others run with torch's defaults beside lr and weight decay.
OPTIMIZER_OPTIONS = {"sgd": SGDOptions}


def make_optimizer(name: str, params, lr: float, weight_decay: float,
                   options: Mapping | None = None) -> torch.optim.Optimizer:
    """Optimiser `name` of `OPTIMIZERS` over `params`, with its `options` (see `OPTIMIZER_OPTIONS`; missing ones
    take their defaults).

    >>> make_optimizer("sgd", [torch.nn.Parameter(torch.zeros(1))], 0.1, 0.0).defaults["momentum"]
    0.9
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {tuple(OPTIMIZERS)}")
    extra = {}
    if name in OPTIMIZER_OPTIONS:
        extra = asdict(validation.options(OPTIMIZER_OPTIONS[name], options, f"optimizer_options.{name}"))
    elif options:
        raise validation.ConfigError(f"optimizer_options.{name}: {name} takes no options of ours", "optimizer_options")
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, **extra)


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, start_factor: float = 0.1):
    """LinearLR warm-up from `start_factor` x lr, then CosineAnnealingLR to the end (stepped once per extractor
    update)."""
    warmup_steps = max(1, min(warmup_steps, total_steps - 1))
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
