"""The heads trained on the pseudo-labels."""

import pytest
import torch

from steelnb.method.heads import CosineHead, make_head


def test_cosine_head_logits_are_bounded_by_the_temperature():
    head = CosineHead(8, 4, temperature=0.5)
    logits = head(torch.randn(16, 8) * 100)
    assert logits.abs().max() <= 2.0 + 1e-5
    assert make_head(8, 4, "cosine", 0.5).weight.shape == (4, 8)
    with pytest.raises(ValueError, match="unknown head"):
        make_head(8, 4, "mlp", 0.5)


def test_a_centroid_head_points_at_the_pseudo_label_centroids():
    features = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]]).numpy()
    head = make_head(2, 2, "centroid", 0.1, features, torch.tensor([0, 0, 1, 1]).numpy())
    assert head(torch.from_numpy(features)).argmax(1).tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="needs the epoch's features"):
        make_head(2, 2, "centroid", 0.1)
