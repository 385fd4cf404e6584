"""steelnb.views: the eval view and the batched multi-crop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from steelnb.views import MultiCrop, to_model_input

MEAN, STD = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _images(n: int, c: int, s: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _plain(**changes) -> MultiCrop:
    """Geometry only: no jitter, grayscale or blur; identity normalisation unless changed."""
    fields = dict(jitter_p=0.0, grayscale_p=0.0, global_blur_p=0.0, local_blur_p=0.0, mean=(0.0,) * 3, std=(1.0,) * 3)
    return MultiCrop(**{**fields, **changes})


def _whole(size: int, **changes) -> MultiCrop:
    """One view of the whole image resized to `size`."""
    whole = dict(n_global=1, n_local=0, global_size=size, global_scale=(1.0, 1.0), ratio=(1.0, 1.0))
    return _plain(**{**whole, **changes})


def _denormalise(x: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    return x * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_views_shapes_and_dtypes(channels: int) -> None:
    views = MultiCrop(global_size=48, local_size=24)(_images(4, channels, 40), _gen())
    assert [tuple(v.shape) for v in views] == [(4, 3, 48, 48)] * 2 + [(4, 3, 24, 24)] * 6
    assert all(v.dtype == torch.float32 and v.is_contiguous() and torch.isfinite(v).all() for v in views)
    if channels == 1:  # grayscale input gives three equal channels
        views = _plain(global_size=48, local_size=24)(_images(2, 1, 40))
        assert all(torch.equal(v[:, 0], v[:, 1]) and torch.equal(v[:, 1], v[:, 2]) for v in views)


def test_paper_defaults() -> None:
    crop = MultiCrop()
    assert (crop.n_global, crop.global_size, crop.n_local, crop.local_size) == (2, 200, 6, 96)
    assert (crop.global_scale, crop.local_scale) == ((0.14, 1.0), (0.05, 0.14))
    assert [v.shape[-1] for v in crop(_images(2, 1, 200), _gen())] == [200] * 2 + [96] * 6


@pytest.mark.parametrize("rows", [slice(0, 3), slice(3, 5), slice(5, 8)])
def test_a_shard_of_a_batch_gets_the_views_it_gets_in_the_whole_batch(rows: slice) -> None:
    images, crop = _images(8, 3, 64), MultiCrop(global_size=48, local_size=24)
    whole = crop(images, _gen(3))
    part = crop(images[rows], _gen(3), rows=rows, total=8)  # one process's shard under torchrun
    assert all(torch.allclose(w[rows], p, atol=1e-6) for w, p in zip(whole, part, strict=True))
    with pytest.raises(ValueError, match="are not the 2 images given"):
        crop(images[:2], _gen(3), rows=slice(0, 3), total=8)


def test_same_seed_same_views_other_seed_other_views() -> None:
    images, crop = _images(3, 3, 64), MultiCrop(global_size=48, local_size=24)
    first, again, other = crop(images, _gen(7)), crop(images, _gen(7)), crop(images, _gen(8))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(not torch.allclose(a, b) for a, b in zip(first, other, strict=True))


def test_each_sample_draws_its_own_parameters() -> None:
    images = _images(1, 3, 64).repeat(2, 1, 1, 1)
    for view in MultiCrop(global_size=48, local_size=24)(images, _gen()):
        assert not torch.allclose(view[0], view[1])


def test_whole_image_crop_is_the_image_or_its_flips_and_normalisation_inverts() -> None:
    image = _images(1, 3, 32)
    views = _whole(32, mean=MEAN, std=STD)(image.repeat(64, 1, 1, 1), _gen())[0]
    pixels = _denormalise(views)
    unit = image.float() / 255
    variants = [unit, unit.flip(-1), unit.flip(-2), unit.flip(-1, -2)]
    which = torch.stack([(pixels - v).abs().amax((1, 2, 3)) for v in variants]).argmin(0)
    assert torch.allclose(pixels, torch.cat(variants)[which], atol=1e-5)
    assert set(which.tolist()) == {0, 1, 2, 3}
    unflipped = _denormalise(_whole(32, mean=MEAN, std=STD, flip_p=0.0)(image.repeat(4, 1, 1, 1), _gen())[0])
    assert torch.allclose(unflipped, unit.expand(4, -1, -1, -1), atol=1e-5)


@pytest.mark.parametrize("size", [16, 32, 64, 100])
def test_whole_image_resize_matches_interpolate(size: int) -> None:
    """Up: plain bilinear; down by powers of two: the antialiased mip level itself."""
    image = _images(2, 1, 64)
    view = _whole(size, flip_p=0.0)(image, _gen())[0][:, :1]
    expected = F.interpolate(image.float() / 255, size=(size, size), mode="bilinear", antialias=True)
    assert torch.allclose(view, expected, atol=1e-5)


def test_downscaled_crop_is_antialiased() -> None:
    stripes = torch.tensor([0, 255], dtype=torch.uint8).repeat(128).expand(1, 1, 256, 256)  # period 2 px
    view = _whole(100, flip_p=0.0)(stripes, _gen())[0]
    assert view.std() < 0.05  # a plain bilinear 256 -> 100 aliases the stripes into a moiré of std ~0.3
    assert abs(view.mean().item() - 0.5) < 0.05


def test_random_resized_crop_geometry_on_a_coordinate_ramp() -> None:
    """Red = x and green = y pixel index, so every view shows where it was read from."""
    ramp = torch.arange(256, dtype=torch.uint8)
    image = torch.stack(
        [ramp.expand(256, 256), ramp[:, None].expand(256, 256), torch.zeros(256, 256, dtype=torch.uint8)]
    )
    crop = _plain(global_size=64, local_size=32)
    offsets = []
    for view, (lo, hi) in zip(
        crop(image.expand(64, -1, -1, -1), _gen()), [crop.global_scale] * 2 + [crop.local_scale] * 6, strict=True
    ):
        size = view.shape[-1]
        assert torch.allclose(view[:, 0], view[:, 0, :1], atol=1e-4) and torch.allclose(
            view[:, 1], view[:, 1, :, :1], atol=1e-4
        )
        coords = (
            torch.stack([view[:, 0, 0], view[:, 1, :, 0]], 1).double() * 255 + 0.5
        )  # (n, xy, size) pixel coordinates
        t = torch.arange(size, dtype=torch.float64) + 0.5
        slope = ((coords - coords.mean(-1, keepdim=True)) * (t - t.mean())).sum(-1) / ((t - t.mean()) ** 2).sum()
        fit = coords.mean(-1, keepdim=True) + slope[..., None] * (t - t.mean())
        assert (coords - fit).abs().max() < 1.0
        start, end = fit[..., 0] - slope / 2, fit[..., -1] + slope / 2  # box edges
        assert (torch.minimum(start, end) > -1).all() and (torch.maximum(start, end) < 257).all()
        side = slope.abs() * size / 256  # (n, xy) fraction of the image side
        area, ratio = side.prod(1), side[:, 0] / side[:, 1]
        assert (area > lo - 0.01).all() and (area < hi + 0.01).all()
        assert area.max() - area.min() > (hi - lo) / 2
        assert (ratio > 3 / 4 - 0.02).all() and (ratio < 4 / 3 + 0.02).all()
        assert ratio.min() < 0.9 and ratio.max() > 1.1
        flipped = (slope < 0).double().mean(0)
        assert (flipped > 0.2).all() and (flipped < 0.8).all()
        offset = torch.minimum(start, end) / (256 - side * 256)  # 0 at the left or top, 1 at the right or bottom
        offsets.append(offset.masked_fill(side > 0.8, 0.5))
    offsets = torch.cat(offsets)  # (views x n, xy)
    assert (offsets.amin(0) < 0.1).all() and (offsets.amax(0) > 0.9).all()


@pytest.mark.parametrize("component", ["brightness", "contrast", "saturation"])
def test_colour_jitter_scales_each_sample_around_its_reference(component: str) -> None:
    """out - ref = factor * (in - ref), factor uniform in 1 -+ 0.4 per sample; ref 0, mean luma or luma."""
    strengths = {"brightness": (0.4, 0, 0), "contrast": (0, 0.4, 0), "saturation": (0, 0, 0.4)}[component]
    level = torch.randint(-40, 30, (400, 1, 1, 1), generator=_gen(1))  # own grey level; 1.4 x 179 < 255
    images = (torch.randint(100, 150, (400, 3, 8, 8), generator=_gen()) + level).to(torch.uint8)
    view = _whole(8, flip_p=0.0, jitter_p=1.0, jitter=strengths)(images, _gen())[0]
    x = images.float() / 255
    luma = (x * torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    ref = {"brightness": torch.zeros_like(luma), "contrast": luma.mean((1, 2, 3), keepdim=True), "saturation": luma}
    delta, moved = x - ref[component], view - ref[component]
    factor = (delta * moved).sum((1, 2, 3)) / (delta * delta).sum((1, 2, 3))
    assert (moved - factor.view(-1, 1, 1, 1) * delta).abs().max() < 1e-4
    assert factor.min() > 0.6 - 1e-4 and factor.max() < 1.4 + 1e-4
    assert factor.min() < 0.65 and factor.max() > 1.35


def test_colour_jitter_stays_in_range() -> None:
    extremes = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 8, 8).repeat(50, 1, 1, 1)
    extremes[:, 0] = 128  # a colour, so saturation acts
    view = _whole(8, jitter_p=1.0, jitter=(0.4, 0.4, 0.4))(extremes, _gen())[0]
    assert view.min() >= 0 and view.max() <= 1


def test_brightness_clips_before_contrast() -> None:
    """Black and white halves: clipped brightness keeps the contrast pivot between them."""
    halves = torch.zeros(200, 1, 8, 8, dtype=torch.uint8)
    halves[..., :4, :] = 255
    view = _whole(8, flip_p=0.0, jitter_p=1.0, jitter=(0.4, 0.4, 0.0))(halves, _gen())[0][:, 0]
    assert (view[:, 0, 0] + view[:, -1, 0] < 1 + 1e-5).all()


def _changed(crop: MultiCrop, images: torch.Tensor) -> torch.Tensor:
    """Which samples a crop (geometry off) changes."""
    view = crop(images, _gen())[0]
    return (view - (images.float() / 255).expand_as(view)).abs().amax((1, 2, 3)) > 1e-4


@pytest.mark.parametrize(
    "changes",
    [
        dict(jitter_p=0.8),
        dict(global_blur_p=0.5, blur_sigma=(1.0, 2.0)),
        dict(n_global=0, n_local=1, local_size=8, local_scale=(1.0, 1.0), local_blur_p=0.3, blur_sigma=(1.0, 2.0)),
    ],
)
def test_augmentation_probabilities(changes: dict) -> None:
    crop = _whole(8, flip_p=0.0, **changes)
    p = next(value for key, value in changes.items() if key.endswith("_p"))
    assert abs(_changed(crop, _images(1, 3, 8).repeat(2000, 1, 1, 1)).float().mean().item() - p) < 0.05
    assert not _changed(_whole(8, flip_p=0.0), _images(4, 3, 8)).any()


def test_grayscale_probability() -> None:
    view = _whole(8, flip_p=0.0, grayscale_p=0.2)(_images(1, 3, 8).repeat(2000, 1, 1, 1), _gen())[0]
    gray = (view[:, 0] == view[:, 1]).all(-1).all(-1) & (view[:, 1] == view[:, 2]).all(-1).all(-1)
    assert abs(gray.float().mean().item() - 0.2) < 0.05


def test_blur_keeps_a_constant_image_constant_and_smooths_noise() -> None:
    blur = dict(global_blur_p=1.0, local_blur_p=1.0, blur_sigma=(1.0, 2.0))
    constant = torch.full((4, 3, 40, 40), 100, dtype=torch.uint8)
    for view in _plain(global_size=32, local_size=16, **blur)(constant, _gen()):
        assert torch.allclose(view, torch.tensor(100 / 255), atol=1e-5)
    noise = _images(4, 1, 32)
    sharp, blurred = _whole(32)(noise, _gen())[0], _whole(32, **blur)(noise, _gen())[0]
    assert (blurred.std((1, 2, 3)) < 0.6 * sharp.std((1, 2, 3))).all()


def test_to_model_input_round_trip_and_channels() -> None:
    images = _images(3, 3, 20)
    x = to_model_input(images, MEAN, STD)
    assert x.dtype == torch.float32 and x.shape == (3, 3, 20, 20)
    assert torch.allclose(_denormalise(x), images.float() / 255, atol=1e-6)
    gray = _denormalise(to_model_input(images[:, :1], MEAN, STD))
    assert torch.allclose(gray, (images[:, :1].float() / 255).expand(-1, 3, -1, -1), atol=1e-6)


def test_to_model_input_statistics_and_antialiased_resize() -> None:
    images = _images(16, 3, 64)
    x = to_model_input(images, MEAN, STD)
    expected_mean = (0.5 - torch.tensor(MEAN)) / torch.tensor(STD)
    expected_std = (1 / 12) ** 0.5 / torch.tensor(STD)
    assert torch.allclose(x.mean((0, 2, 3)), expected_mean, atol=0.02)
    assert torch.allclose(x.std((0, 2, 3)), expected_std, rtol=0.02)
    small = to_model_input(images, MEAN, STD, size=16)
    assert small.shape == (16, 3, 16, 16)
    assert torch.allclose(small.mean((0, 2, 3)), expected_mean, atol=0.02)
    assert (small.std((0, 2, 3)) < 0.45 * expected_std).all()  # plain bilinear would keep ~0.7 of it
    assert torch.equal(to_model_input(images, MEAN, STD, size=64), x)


@pytest.mark.parametrize(
    "images",
    [torch.zeros(1, 3, 8, 8), torch.zeros(1, 2, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 9, dtype=torch.uint8)],
)
def test_bad_input_is_refused(images: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        to_model_input(images, MEAN, STD, size=8)  # with a size, a non-square image is refused too
    with pytest.raises(ValueError):
        MultiCrop()(images)


def test_the_eval_view_keeps_a_non_square_image_at_its_own_size() -> None:
    images = torch.zeros(2, 3, 8, 9, dtype=torch.uint8)
    assert to_model_input(images, MEAN, STD).shape == (2, 3, 8, 9)


@CUDA
def test_cuda_views_match_cpu_views() -> None:
    images, crop = _images(4, 3, 96), MultiCrop(global_size=64, local_size=32)
    on_cpu, on_cuda = crop(images, _gen(3)), crop(images.cuda(), _gen(3))
    for a, b in zip(on_cpu, on_cuda, strict=True):
        assert b.is_cuda and torch.allclose(a, b.cpu(), atol=1e-4)
    assert torch.allclose(
        to_model_input(images.cuda(), MEAN, STD, 48).cpu(), to_model_input(images, MEAN, STD, 48), atol=1e-5
    )
