"""The classifier heads trained on the pseudo-labels, fresh every epoch (`make_head`).

linear: the paper's softmax classifier (one logit for K = 2); cosine: the paper's eq. 11 with random
prototypes; centroid: eq. 11 with the prototypes set to the pseudo-label centroids of the epoch's features.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("linear", "cosine", "centroid")


def make_head(num_features: int, n_clusters: int, kind: str, temperature: float,
              features: np.ndarray | None = None, pseudo: np.ndarray | None = None) -> nn.Module:
    """A fresh classifier over pseudo-labels.

    linear: the paper's softmax classifier, one logit (BCE) for K = 2; cosine: eq. 11, random
    prototypes; centroid: eq. 11 with the prototypes set to the pseudo-label centroids of `features`.
    """
    if kind == "linear":
        return nn.Linear(num_features, 1 if n_clusters == 2 else n_clusters)
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; choose one of {HEADS}")
    head = CosineHead(num_features, n_clusters, temperature)
    if kind == "centroid":
        if features is None or pseudo is None:
            raise ValueError("the centroid head needs the epoch's features and pseudo-labels")
        head.init_from_centroids(features, pseudo)
    return head


class CosineHead(nn.Module):
    """Logits = cos(feature - center, w_k) / temperature (the paper's eq. 11).

    `center` (the mean feature when initialised from centroids, else zero) keeps cosines informative
    for backbones whose features are all positive (after ReLU).
    """

    def __init__(self, num_features: int, outputs: int, temperature: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(outputs, num_features) / math.sqrt(num_features))
        self.register_buffer("center", torch.zeros(num_features))
        self.temperature = temperature

    @torch.no_grad()
    def init_from_centroids(self, features: np.ndarray, pseudo: np.ndarray) -> None:
        """Prototypes = normalised mean of the centred, normalised features of each pseudo-label."""
        x = torch.from_numpy(features).float()
        self.center.copy_(x.mean(0))
        x = F.normalize(x - self.center, dim=1)
        labels = torch.from_numpy(pseudo).long()
        sums = torch.zeros_like(self.weight).index_add_(0, labels, x)
        self.weight.copy_(F.normalize(sums, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x - self.center, dim=1) @ F.normalize(self.weight, dim=1).T / self.temperature
