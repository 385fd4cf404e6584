"""Every backbone of the paper and of the CPU runs builds from timm and extracts pooled features."""

import re

import numpy as np
import pytest
import torch

from steelnb.backbones import (
    PAPER_BACKBONES,
    SMALL_BACKBONES,
    create_backbone,
    device_name,
    extract_features,
    resolve_device,
)
from steelnb.study.records import environment
from steelnb.views import to_model_input


@pytest.mark.parametrize("name", PAPER_BACKBONES + SMALL_BACKBONES)
def test_backbone_builds_and_extracts_features(name):
    backbone = create_backbone(name, "random")
    images = np.random.default_rng(0).integers(0, 255, (2, 1, 40, 40), dtype=np.uint8)
    features = extract_features(backbone, images, input_size=64, device="cpu")
    assert features.shape == (2, backbone.num_features)
    assert np.isfinite(features).all()
    assert backbone.weights == "random" and not backbone.pretrained


def test_weights_from_a_file_are_loaded_and_recorded(tmp_path):
    torch.manual_seed(1)
    source = create_backbone("resnet18", "random")
    path = tmp_path / "resnet18.pt"
    torch.save(source.model.state_dict(), path)
    loaded = create_backbone("resnet18", str(path))
    assert loaded.weights == f"file:{path}" and loaded.pretrained
    for a, b in zip(source.model.state_dict().values(), loaded.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_missing_or_unfitting_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_backbone("resnet18", str(tmp_path / "nope.pt"))
    path = tmp_path / "other.pt"
    torch.save(create_backbone("convnextv2_atto", "random").model.state_dict(), path)
    with pytest.raises(ValueError, match="does not fit"):
        create_backbone("resnet18", str(path))


def test_device_name_says_what_ran():
    assert device_name("cpu") == "cpu" and environment("cpu")["device"] == "cpu"
    if torch.cuda.is_available():
        assert device_name("auto") == torch.cuda.get_device_name(0)


@pytest.mark.parametrize("asked, gpus, message", [
    ("cuda", 0, "--device cuda: no CUDA GPU is available on this machine"),
    ("cuda:0", 0, "--device cuda:0: no CUDA GPU is available on this machine"),
    ("cuda:2", 2, "--device cuda:2: this machine has 2 CUDA GPUs (cuda:0 to cuda:1)"),
    ("mps", 0, "--device mps: Apple's MPS is not available on this machine"),
])
def test_a_device_this_machine_lacks_is_a_clear_error(monkeypatch, asked, gpus, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_device(asked)
    assert resolve_device("auto") == torch.device("cuda" if gpus else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_map_weights_pool_the_anomalous_cells_alone():
    """Weights 1 on the feature map's right column, 0 elsewhere: the pooled features are that column's mean, not
    the whole map's (which the plain pooling gives, as do uniform weights)."""
    torch.manual_seed(0)
    backbone = create_backbone("resnet18", "random")
    images = np.random.default_rng(0).integers(0, 255, (3, 1, 64, 64), dtype=np.uint8)
    with torch.no_grad():
        maps = backbone.model.eval().forward_features(to_model_input(torch.from_numpy(images), backbone.mean,
                                                                     backbone.std, 64))  # (3, 512, 2, 2)
    right = np.zeros((3, 8, 8), np.float32)
    right[:, :, 4:] = 1.0  # any grid: area-resized to the map's 2 x 2
    weighted = extract_features(backbone, images, input_size=64, device="cpu", weights=right)
    np.testing.assert_allclose(weighted, maps[..., 1].mean(-1).numpy(), rtol=1e-5, atol=1e-6)
    plain = extract_features(backbone, images, input_size=64, device="cpu")
    assert np.abs(weighted - plain).max() > 1e-3
    uniform = extract_features(backbone, images, input_size=64, device="cpu", weights=np.ones((3, 5, 5)))
    np.testing.assert_allclose(uniform, plain, rtol=1e-5, atol=1e-6)
