"""The loss of the pseudo-label classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pseudo_label_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against pseudo-labels; BCEWithLogits when the head has one output (K = 2)."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets.float())
    return F.cross_entropy(logits, targets)
