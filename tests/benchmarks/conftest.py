"""Shared by the benchmarks' tests: `tiny_pile`, a small lab pile written as the lab caches one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch


def write_tiny_pile(folder: Path, seed: int = 0, odd: slice = slice(-6, None), truth: np.ndarray | None = None,
                    forward_s: float = 0.1, cells: int = 6) -> np.ndarray:
    """Lab pile `tiny` in `folder` (`detect_lab.extract`'s cache: stride-16 features of 48 images, cells x cells x 8,
    seeded noise), the images at `odd` holding an odd square; their defect flags (`truth`, else 1 at `odd`)."""
    features = torch.randn(48, cells, cells, 8, generator=torch.Generator().manual_seed(seed)) * 0.1
    features[odd, 2:4, 2:4] += 2.0
    if truth is None:
        truth = np.zeros(48, int)
        truth[odd] = 1
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(({16: features.half()}, truth, forward_s), folder / "tiny.pt")
    return truth


@pytest.fixture
def tiny_pile() -> Callable[..., np.ndarray]:
    """`write_tiny_pile`, to call with a folder."""
    return write_tiny_pile
