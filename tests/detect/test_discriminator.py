"""The patch discriminator (`detect/discriminator.py`): a patch unlike the clean images' scores highest, each image
is scored by the model of the half it is not in, the maps are seeded, and metrics.json says whether and why the
discriminator joined the maps; its maps join the scorer's at their weight (`fusion.log_maps`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect import DetectConfig, detect, discriminator, run
from steelnb.detect.discriminator import discriminator_maps
from steelnb.detect.fusion import log_maps, robust_z
from steelnb.detect.rescore import split_halves
from tests.detect.conftest import FAST, pile, plant, texture

SIZE = 128


def busy_features(n: int = 24, seed: int = 0) -> torch.Tensor:
    """(n, 6, 6, 8) features: two channels vary widely (a busy texture), six hardly (a smooth surface)."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 6, 6, 8, generator=generator) * 0.05
    features[..., :2] *= 20
    return features


def test_a_shift_where_the_clean_patches_hardly_vary_outranks_the_busy_texture():
    features = busy_features()
    features[20, 2, 3, 3] += 0.6  # 12 spreads of a quiet channel, less than one of the busy ones
    maps, _ = discriminator_maps(lambda index: features[index], np.arange(16), 24, np.arange(24), noise=0.3, epochs=300)
    assert np.unravel_index(maps.argmax(), maps.shape) == (20, 2, 3)


def test_the_same_seed_gives_the_same_maps_and_another_seed_others():
    features = busy_features()

    def maps(seed: int) -> np.ndarray:
        return discriminator_maps(lambda index: features[index], np.arange(16), 24, np.arange(24), noise=0.3,
                                  epochs=300, seed=seed)[0]

    np.testing.assert_array_equal(maps(0), maps(0))
    assert not np.allclose(maps(0), maps(1))


def test_each_image_is_scored_by_the_model_of_the_half_it_is_not_in(monkeypatch):
    trained_on = []

    def constant(patches, noise, batch, seed):  # a model that answers the seed it was trained with: seed + side
        trained_on.append((len(patches), batch))
        return lambda grid: torch.full(grid.shape[:-1], float(seed))

    monkeypatch.setattr(discriminator, "_trained", constant)
    clean = np.arange(2, 22)
    maps, batches = discriminator_maps(lambda index: busy_features()[index], clean, 24, np.arange(24), 0.3, 300,
                                       seed=5)
    half = split_halves(24, clean, np.random.default_rng([5, 1]))
    side_of_model = np.log(np.expm1(maps[:, 0, 0])) - 5  # the maps are softplus(score)
    np.testing.assert_allclose(side_of_model, 1 - half, atol=1e-5)
    # the clean images split evenly, every patch of each sampled; 300 steps of 360 patches make the 300 passes
    assert trained_on == [(10 * 36, 360), (10 * 36, 360)] and batches == [360, 360]


def test_too_few_clean_images_are_refused():
    with pytest.raises(ValueError, match="at least 2 clean images"):
        discriminator_maps(lambda index: busy_features()[index], np.array([3]), 24, np.arange(24), 0.3, 1)


def test_a_weight_sets_how_far_a_scorer_that_alone_sees_a_defect_lifts_it():
    maps = torch.ones(6, 2, 3, 3) + 0.1 * torch.rand(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    maps[0, 1, 1, 1] = 10.0  # only the second scorer sees image 0's centre
    lifted = [float(log_maps(maps, (1.0, weight))[0, 1, 1]) for weight in (0.25, 0.5, 1.0)]
    assert lifted == sorted(lifted) and lifted[0] > 0
    with pytest.raises(ValueError, match="3 weights for 2 scorers"):
        log_maps(maps, (1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def smudged() -> np.ndarray:
    """24 textures, a faint smooth square in image 5."""
    return plant(texture(24, SIZE, seed=3), 5, 40, 70, 24, 140)


def config(**settings) -> DetectConfig:
    return DetectConfig(**{**FAST, "max_side": SIZE, "seed": 0, "top_share": 0.01, **settings})


def test_the_discriminator_lifts_a_smudge_and_metrics_say_whether_and_why_it_joined(smudged):
    joined = detect(config(), pile(smudged))  # on by default, at weight 0.5 (results/detect/heldout.md)
    record = joined.metrics["discriminator"]
    assert {k: record[k] for k in ("used", "weight", "noise", "epochs", "steps", "share", "clean_images")} == \
        {"used": True, "weight": 0.5, "noise": 1.0, "epochs": discriminator.EPOCHS, "steps": discriminator.STEPS,
         "share": discriminator.CLEAN_SHARE, "clean_images": 16}
    assert record["estimated_defective_share"] is None  # 24 images: too few to estimate, so 70 %
    assert record["batches"] == [discriminator.BATCHES[0]] * 2  # a small pile: EPOCHS passes take fewer patches a step
    alone = detect(config(discriminator=0), pile(smudged))
    assert alone.metrics["discriminator"] == {"used": False, "why": "--discriminator 0"}
    # the smooth smudge on the texture stands apart from the pile only with the discriminator (robust z 5.6 against
    # 1.2 on one machine; its rank among the near-tied scores alone moved from 7th to 2nd between machines)
    assert robust_z(joined.table.score.to_numpy())[5] > 3 > robust_z(alone.table.score.to_numpy())[5]
    small = detect(config(discriminator=0.5), pile(smudged[:12])).metrics["discriminator"]
    assert not small["used"] and "fewer than 20" in small["why"]
    fused = [detect(config(method="fused", references=4, discriminator=weight), pile(smudged)) for weight in (0.5, 0)]
    assert fused[0].metrics["discriminator"]["why"].startswith("--method fused")
    np.testing.assert_array_equal(fused[0].table["score"], fused[1].table["score"])  # the flag changes nothing there


def test_the_share_it_trains_on_follows_the_pile_s_estimate_within_its_bounds():
    rng = np.random.default_rng(0)
    clean = np.exp(rng.normal(0, 0.1, 200))
    heavy = np.exp(np.r_[rng.normal(0, 0.1, 80), rng.uniform(0.5, 3, 120)])  # 60 %, spread far above the bulk
    middle = np.exp(np.r_[rng.normal(0, 0.1, 110), rng.normal(1, 0.1, 90)])  # 45 % apart
    assert discriminator.clean_share(clean)[0] == discriminator.CLEAN_SHARE  # estimated near 0: capped at 0.7
    assert discriminator.clean_share(heavy)[0] == 0.5  # estimated above half: the floor
    share, estimate = discriminator.clean_share(middle)
    assert share == pytest.approx(1 - estimate) and 0.5 < share < 0.7
    assert discriminator.clean_share(heavy[:99]) == (discriminator.CLEAN_SHARE, None)  # too few to estimate


def test_a_pile_estimated_heavy_trains_the_discriminator_on_the_share_its_estimate_gives(smudged, monkeypatch):
    ranked = []

    def estimated(scores):
        ranked.append(len(scores))
        return 0.5, 0.45  # as a pile of 100 or more estimated 45 % defective

    monkeypatch.setattr(run, "clean_share", estimated)
    record = detect(config(), pile(smudged)).metrics["discriminator"]
    assert ranked == [24]  # the whole pile's last-pass scores
    assert (record["share"], record["estimated_defective_share"], record["clean_images"]) == (0.5, 0.45, 12)
