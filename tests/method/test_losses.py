"""The pseudo-label loss."""

import torch

from steelnb.method.heads import make_head
from steelnb.method.losses import pseudo_label_loss


def test_two_clusters_use_one_logit_and_bce():
    head = make_head(16, 2, "linear", 0.1)
    assert head.out_features == 1
    logits = torch.tensor([[10.0], [-10.0]])
    assert pseudo_label_loss(logits, torch.tensor([1, 0])) < 1e-3
    assert pseudo_label_loss(logits, torch.tensor([0, 1])) > 5


def test_more_clusters_use_cross_entropy():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0]])
    assert pseudo_label_loss(logits, torch.tensor([0, 2])) < 1e-3
