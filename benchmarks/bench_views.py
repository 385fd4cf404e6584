"""CPU images/s of the batched `MultiCrop` next to the resnet18 training step it feeds, and next to a
per-image torchvision.transforms.v2 loop doing the same augmentations.

    .venv/bin/python benchmarks/bench_views.py   # about a minute on 2 cores

Input is grayscale uint8 (B, 1, S, S) like the steel data sets; the per-image loop converts to RGB first,
as a PIL-style pipeline does. Each time is a median of 1-3 repeats after one warm-up, on two clocks:
"wall" (images/s as run, other load on the cores included) and "cpu" (images per CPU-second of this
process, which other load disturbs far less).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import timm
import torch
from torchvision.transforms import v2

from steelnb.views import MultiCrop

SETTINGS = {  # name: (multi-crop, input side, batch size)
    "paper 2x200+6x96, 200 px": (MultiCrop(), 200, 8),
    "cpu 2x112+4x48, 128 px": (MultiCrop(global_size=112, n_local=4, local_size=48), 128, 16),
}


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds of `fn` over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def train_step(model: torch.nn.Module, views: list[torch.Tensor]) -> None:
    """Forward and backward of every view (features squared as a stand-in loss)."""
    loss = sum(model(v).pow(2).mean() for v in views)
    loss.backward()
    model.zero_grad(set_to_none=True)


def per_image_pipelines(crop: MultiCrop) -> list[v2.Compose]:
    """The same augmentation, one torchvision v2 pipeline per view, applied image by image."""

    def pipeline(size: int, scale: tuple[float, float], blur_p: float) -> v2.Compose:
        return v2.Compose(
            [
                v2.RGB(),
                v2.RandomResizedCrop(size, scale=scale, ratio=crop.ratio, antialias=True),
                v2.RandomHorizontalFlip(crop.flip_p),
                v2.RandomVerticalFlip(crop.flip_p),
                v2.RandomApply([v2.ColorJitter(*crop.jitter)], p=crop.jitter_p),
                v2.RandomGrayscale(crop.grayscale_p),
                v2.RandomApply([v2.GaussianBlur(13, crop.blur_sigma)], p=blur_p),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(crop.mean, crop.std),
            ]
        )

    glob = pipeline(crop.global_size, crop.global_scale, crop.global_blur_p)
    loc = pipeline(crop.local_size, crop.local_scale, crop.local_blur_p)
    return [glob] * crop.n_global + [loc] * crop.n_local


def per_image_loop(pipelines: list[v2.Compose], images: torch.Tensor) -> list[torch.Tensor]:
    return [torch.stack([p(image) for image in images]) for p in pipelines]


def bench(name: str, crop: MultiCrop, side: int, batch: int, model: torch.nn.Module) -> None:
    """Print a wall and a cpu row: images/s of the three, the speed-up over the loop, augment / model time."""
    images = torch.randint(0, 256, (batch, 1, side, side), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    views = crop(images, generator)
    pipelines = per_image_pipelines(crop)
    augment = timed(lambda: crop(images, generator), repeats=3)
    loop = timed(lambda: per_image_loop(pipelines, images), repeats=1)
    step = timed(lambda: train_step(model, views), repeats=1)
    for clock, a, lp, m in zip(("wall", "cpu"), augment, loop, step, strict=True):
        print(f"{name:26} {clock:5} {batch / a:10.1f} {batch / lp:8.1f} {lp / a:7.1f}x {batch / m:9.2f} {a / m:9.3f}")


def main() -> None:
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=0).train()
    threads, load = torch.get_num_threads(), os.getloadavg()[0]
    print(f"CPU, {threads} torch threads, load average {load:.1f}; images/s, higher is better")
    print(
        f"{'setting':26} {'clock':5} {'MultiCrop':>10} {'v2 loop':>8} {'speed-up':>8} {'rn18 f+b':>9} {'aug/model':>9}"
    )
    for name, (crop, side, batch) in SETTINGS.items():
        bench(name, crop, side, batch, model)


if __name__ == "__main__":
    main()
