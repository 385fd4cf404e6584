"""A patch discriminator trained on the pile's own clean images: a second opinion beside the scorer's maps.

After SimpleNet (Liu et al., 2023), trained on the pile instead of a clean training set: a linear adaptor (the
identity at first) and a two-layer perceptron learn to tell the patch features of the images that the last pass
ranks most normal from the same features with Gaussian noise added, the features in units of each channel's
spread over those patches; a patch scores by how far the perceptron puts it on the noise side (softplus, so the
maps stay positive for the log of the fusion). The clean images are split in two halves and each image is scored
by the discriminator of the half it is not in, so no image is scored by a model trained on its patches (as the
clean bank's halves, rescore.py; the per-channel mean and spread that standardise the features are both halves').
A Euclidean nearest-neighbour distance is ruled by the directions in which the pile's patches vary most; the
discriminator also learns where they hardly vary, where a smooth smudge on a woven texture differs
(results/detect/discriminator.md).

Every draw is seeded: the halves and the training by `seed`, each clean image's patch sample by its index, and the
training runs on one CPU thread (300 steps amplify the rounding of a matrix product split over threads: a package
run's scores moved by 2 % at the median, up to 43 %, between 1 and 2 threads; 0.004 % and 0.08 % on one thread), so a
pile gives nearly the same maps on any number of processes and threads (the samples are gathered; every process
trains the same two models, its own shard scored; what is left is the rounding of the features each process
extracts, which training amplifies: the two-process test allows 0.5 % of a score).

>>> import torch
>>> features = torch.randn(8, 4, 4, 6, generator=torch.Generator().manual_seed(0)) * 0.1
>>> features[7, 1, 1] += 3.0  # image 7 holds one odd patch
>>> maps, batches = discriminator_maps(lambda index: features[index], np.arange(7), 8, np.arange(8), 0.3, 3000)
>>> maps.shape, int(maps[7].argmax()) == 5, batches
((8, 4, 4), True, [640, 480])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from .. import distributed
from .decision import AUTO_MIN, null_fit
from .rescore import sampled_patches, split_halves

# of the pile, the images it trains on (those the last pass ranks most normal, as the rescore's) where the pile is too
# small to estimate its defective share, and the most where it is
CLEAN_SHARE = 0.7
CLEAN_SHARES = (0.5, CLEAN_SHARE)  # `clean_share`'s least and most (0.5: the decision's defects under half), chosen
# over a fixed 70 % in the nineteenth round (results/detect/discriminator.md): 40 % piles trained on 70 % lost AUROC
EPOCHS = 6  # passes over each half's clean patches: within 0.0022 AUROC of 12, at half the cost (discriminator.md)
STEPS = 300  # training steps of each half's model, the batch sized to make EPOCHS passes
BATCHES = (256, 4096)  # the least and most clean patches (and as many noisy ones) a training step
PATCHES = 200_000  # clean patches sampled for the two halves' training, at most
HIDDEN = 256  # the perceptron's hidden units
RATES = (1e-4, 2e-4)  # Adam's learning rates: the adaptor's, the perceptron's (SimpleNet's)


def discriminator_maps(features: Callable[[np.ndarray], Tensor], clean: np.ndarray, n: int, mine: np.ndarray,
                       noise: float, epochs: float, seed: int = 0, batch_size: int = 8
                       ) -> tuple[np.ndarray, list[int]]:
    """(n, h, w) float32 maps of every image of the pile (this process's shard `mine`, features by image index,
    gathered): each patch's score under the discriminator trained on the half of the `clean` images that its image
    is not in, for `epochs` passes over that half's sampled patches (fewer or more where the batch meets BATCHES) at
    Gaussian `noise` (in units of the clean patches' spread per channel); and the two halves' training batches."""
    if len(clean) < 2:
        raise ValueError(f"the discriminator needs at least 2 clean images, got {len(clean)}")
    half = split_halves(n, clean, np.random.default_rng([seed, 1]))
    sampled, owners = sampled_patches(clean, max(1, PATCHES // len(clean)), features, mine, seed, batch_size,
                                      np.float32, "discriminator")
    patches = torch.from_numpy(sampled)
    wide = patches.double()  # float64 sums: the same rounding on any number of threads
    mean, spread = wide.mean(0).float(), wide.std(0).float().clamp(min=1e-6)
    models, batches = [], []
    for side in (0, 1):
        standardised = (patches[half[owners] == side] - mean) / spread
        batches.append(training_batch(len(standardised), epochs))
        models.append(_trained(standardised, noise, batches[-1], seed + side))
    maps = []
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            index = mine[start:start + batch_size]
            grids = (features(index).float().cpu() - mean) / spread
            scored = torch.stack([models[1 - half[i]](grid) for i, grid in zip(index, grids, strict=True)])
            maps.append(nn.functional.softplus(scored).numpy().astype(np.float32))
    return distributed.gather(np.concatenate(maps) if maps else np.empty((0,), np.float32)), batches


def clean_share(scores: np.ndarray) -> tuple[float, float | None]:
    """The share of the pile the discriminator trains on, the images that `scores` (the last pass's) rank most
    normal: one minus the pile's estimated defective share (`decision.null_fit` of `scores`) within CLEAN_SHARES, on
    a pile of AUTO_MIN images or more; CLEAN_SHARE below it. Also the estimate (None below AUTO_MIN).

    >>> rng = np.random.default_rng(0)
    >>> heavy = np.exp(np.r_[rng.normal(0, 0.1, 60), rng.normal(1, 0.1, 40)])  # 40 % apart from the bulk
    >>> share, estimate = clean_share(heavy)
    >>> round(share, 2), round(estimate, 2), clean_share(heavy[:99])
    (0.6, 0.4, (0.7, None))
    """
    if len(scores) < AUTO_MIN:
        return CLEAN_SHARE, None
    estimate = null_fit(scores).defective_share
    return float(np.clip(1 - estimate, *CLEAN_SHARES)), estimate


def training_batch(patches: int, epochs: float) -> int:
    """The clean patches a training step draws so that STEPS steps pass `epochs` times over `patches`, within BATCHES:
    the training's cost grows with the pile until the sample reaches its cap (PATCHES // 2 a half: 2,000 at EPOCHS).

    >>> training_batch(100_000, 12), training_batch(23_000, 12), training_batch(500, 12)
    (4000, 920, 256)
    """
    return int(np.clip(round(epochs * patches / STEPS), *BATCHES))


def _trained(patches: Tensor, noise: float, batch: int, seed: int) -> Callable[[Tensor], Tensor]:
    """The score of a (..., D) grid of standardised features after STEPS steps of telling `batch` of `patches` from
    themselves plus `noise` (SimpleNet's truncated L1: clean above 0.5, noisy below -0.5)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the global generator left as it was
        torch.manual_seed(seed)
        adaptor = nn.Linear(patches.shape[1], patches.shape[1])
        perceptron = nn.Sequential(nn.Linear(patches.shape[1], HIDDEN), nn.BatchNorm1d(HIDDEN), nn.LeakyReLU(0.2),
                                   nn.Linear(HIDDEN, 1))
    with torch.no_grad():
        adaptor.weight.copy_(torch.eye(patches.shape[1]))
        adaptor.bias.zero_()
    optimiser = torch.optim.Adam([{"params": adaptor.parameters(), "lr": RATES[0]},
                                  {"params": perceptron.parameters(), "lr": RATES[1]}], weight_decay=1e-5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(STEPS):
            _step(adaptor, perceptron, optimiser, patches, noise, batch, generator)
    finally:
        torch.set_num_threads(threads)
    adaptor.eval()
    perceptron.eval()
    return lambda grid: -perceptron(adaptor(grid.reshape(-1, grid.shape[-1]))).view(grid.shape[:-1])


def _step(adaptor: nn.Module, perceptron: nn.Module, optimiser: torch.optim.Optimizer, patches: Tensor, noise: float,
          batch: int, generator: torch.Generator) -> None:
    """One step of SimpleNet's truncated L1 on `batch` clean patches and as many noisy ones."""
    true = adaptor(patches[torch.randint(len(patches), (batch,), generator=generator)])
    noisy = true + noise * torch.randn(true.shape, generator=generator)
    out = perceptron(torch.cat([true, noisy])).squeeze(1)
    loss = (0.5 - out[:batch]).clamp(min=0).mean() + (0.5 + out[batch:]).clamp(min=0).mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
