"""timm's ConvNeXt V2 Global Response Normalisation computes the paper's eqs. 1-3."""

import timm
import torch
from timm.layers.grn import GlobalResponseNorm


def grn_by_the_paper(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x: (N, H, W, C). Eq. 1: G(X)_i = ||X_i||_2 over space; eq. 2: N(G)_i = G_i / mean_j G_j;
    eq. 3: X_i <- gamma * X_i * N_i + beta + X_i."""
    aggregated = torch.sqrt((x**2).sum(dim=(1, 2), keepdim=True))
    normalised = aggregated / (aggregated.mean(dim=-1, keepdim=True) + eps)
    return gamma * (x * normalised) + beta + x


def test_timm_grn_equals_eqs_1_to_3():
    torch.manual_seed(0)
    grn = GlobalResponseNorm(16)
    with torch.no_grad():
        grn.weight.normal_()
        grn.bias.normal_()
    x = torch.randn(2, 7, 5, 16)
    torch.testing.assert_close(grn(x), grn_by_the_paper(x, grn.weight, grn.bias), rtol=1e-5, atol=1e-6)


def test_grn_with_zero_parameters_is_the_identity():
    """gamma = beta = 0 (their initialisation) makes GRN pass its input through (the paper's residual)."""
    x = torch.randn(1, 3, 3, 8)
    torch.testing.assert_close(GlobalResponseNorm(8)(x), x)


def test_convnextv2_blocks_use_grn_and_convnext_v1_does_not():
    v2 = timm.create_model("convnextv2_atto", pretrained=False, num_classes=0)
    v1 = timm.create_model("convnext_atto", pretrained=False, num_classes=0)
    assert any(isinstance(m, GlobalResponseNorm) for m in v2.modules())
    assert not any(isinstance(m, GlobalResponseNorm) for m in v1.modules())
