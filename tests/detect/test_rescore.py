"""The second pass (`detect/rescore.py`): a pattern the pile shares stops scoring as a defect, no image meets its
own patches, the answer does not depend on whether the first pass's features were kept, and metrics.json says
when and why there was no second pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect import DetectConfig, detect, rescore
from steelnb.detect.rescore import CleanBank, clean_images
from tests.detect.conftest import FAST, pile, plant, texture

SIZE = 128


def config(**settings) -> DetectConfig:
    return DetectConfig(**{**FAST, "max_side": SIZE, "seed": 0, **settings})


@pytest.fixture(scope="module")
def marked() -> np.ndarray:
    """24 textures, each with the same bright mark somewhere (unlike the rest of its image, common in the pile),
    and a dark square in image 5 only: the defect."""
    rng = np.random.default_rng(0)
    images = texture(24, SIZE, seed=3)
    for image in images:
        top, left = rng.integers(8, SIZE - 24, 2)
        image[top:top + 16, left:left + 16] = 255
    return plant(images, 5, 40, 70, 16, 10)


def test_a_mark_the_pile_shares_is_normal_after_the_second_pass(marked):
    # at the top 1 %: a share chosen from the pile (scoring.py) already ranks the defect first after one pass
    # the discriminator off: the second pass alone (with it, one pass already ranks the defect first)
    one_pass = detect(config(rescore=0, top_share=0.01, discriminator=0), pile(marked)).table
    two = detect(config(rescore_patches=100_000, top_share=0.01, discriminator=0), pile(marked))
    assert one_pass.at[5, "rank"] > 1  # the marks outrank the defect when each image is its own reference
    assert two.table.at[5, "rank"] == 1 and two.table["defective"].tolist() == [int(i == 5) for i in range(24)]
    record = two.metrics["rescore"]
    assert {k: record[k] for k in ("used", "share", "clean_images", "bank_patches", "features")} == \
        {"used": True, "share": 0.7, "clean_images": 16, "bank_patches": 16 * 16 * 16,
         "features": "kept in memory (4 MiB)"}
    assert record["rounds"] == len(record["clean_images_new_each_round"]) >= 1
    assert record["clean_images_new_each_round"][0] == 16  # the first round's are all new
    one_round = detect(config(rescore_patches=100_000, rescore_rounds=1, top_share=0.01, discriminator=0),
                       pile(marked)).table
    assert one_round.at[5, "rank"] == 1  # the first round already puts the marks among the normal


def test_features_kept_or_extracted_again_give_the_same_answer(marked, monkeypatch):
    # the default: a second pass and the discriminator, whose training amplifies any rounding between the two
    kept = detect(config(), pile(marked))
    monkeypatch.setattr(rescore, "KEEP_BYTES", 0)
    again = detect(config(), pile(marked))
    np.testing.assert_allclose(again.table["score"], kept.table["score"], rtol=1e-5)
    assert kept.metrics["discriminator"]["used"] and again.metrics["discriminator"]["used"]
    assert again.metrics["rescore"]["features"].startswith("extracted again (keeping them would take 4 MiB")


def test_metrics_say_why_a_pile_had_one_pass(marked):
    assert detect(config(rescore=0), pile(marked)).metrics["rescore"] == {"used": False, "why": "--rescore 0"}
    small = detect(config(), pile(marked[:12])).metrics["rescore"]
    assert not small["used"] and "fewer than 20" in small["why"]
    few = detect(config(rescore=0.05), pile(marked)).metrics["rescore"]  # 24 x 0.05: 1 clean image
    assert not few["used"] and "fewer than 2 clean images" in few["why"]
    mutual = detect(config(method="mutual", references=4), pile(marked)).metrics["rescore"]
    assert not mutual["used"] and mutual["why"].startswith("--method mutual")


def test_no_image_meets_its_own_patches_in_the_bank():
    features = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 3, 3, 2).contiguous()
    bank = CleanBank(patches=1000, seed=0)  # every patch of every image in the bank
    bank.update(6, np.arange(6), lambda index: features[index], np.arange(6))
    distances = bank.maps(features, np.arange(6))
    assert (distances > 0).all()  # image i's patches all equal i: a distance of 0 would be its own


def brute_force(features: torch.Tensor, clean: np.ndarray, half: np.ndarray) -> np.ndarray:
    """(N, P) distance of every patch to the nearest patch of a clean image in the other half (all patches kept)."""
    flat = features.reshape(len(features), -1, features.shape[-1]).double()
    out = np.empty(flat.shape[:2])
    for image in range(len(flat)):
        others = flat[[j for j in clean if half[j] != half[image]]].reshape(-1, flat.shape[-1])
        out[image] = torch.cdist(flat[image], others).min(1).values.numpy()
    return out


def test_a_later_round_meets_the_same_distances_as_a_bank_built_afresh():
    features = torch.randn(30, 4, 4, 5, generator=torch.Generator().manual_seed(0)).half().float()  # float16, as
    # the bank rounds them
    bank = CleanBank(patches=10**6, seed=0)  # every patch of every clean image in the bank
    for clean in (np.arange(20), np.arange(3, 23), np.arange(5, 25)):
        stays = np.intersect1d(clean, bank.clean)
        before = None if bank.half is None else bank.half[stays].copy()
        bank.update(30, clean, lambda index: features[index], np.arange(30))
        found = bank.maps(features, np.arange(30)).reshape(30, -1).numpy()
        np.testing.assert_allclose(found, brute_force(features, clean, bank.half), atol=1e-4)  # float32 BLAS
        assert sorted(np.bincount(bank.half[clean], minlength=2)) == [10, 10]  # the halves stay even
        if before is not None:
            assert (bank.half[stays] == before).all()  # an image that stays keeps its half
    assert 0 < bank.full_share() < 0.5  # most patches met only the new images' patches


def test_an_image_skipped_in_a_round_meets_the_whole_bank_when_it_comes_back():
    features = torch.randn(30, 4, 4, 5, generator=torch.Generator().manual_seed(1)).half().float()
    bank = CleanBank(patches=10**6, seed=0)
    bank.update(30, np.arange(20), lambda index: features[index], np.arange(30))
    bank.maps(features, np.arange(30))
    bank.update(30, np.arange(3, 23), lambda index: features[index], np.arange(30))
    bank.maps(features[:15], np.arange(15))  # images 15-29 skip the second round
    bank.update(30, np.arange(5, 25), lambda index: features[index], np.arange(30))
    found = bank.maps(features, np.arange(30)).reshape(30, -1).numpy()
    np.testing.assert_allclose(found, brute_force(features, np.arange(5, 25), bank.half), atol=1e-4)


def test_the_clean_images_are_the_lowest_ranked_share():
    assert clean_images(np.array([0.9, 0.1, 0.5, 0.2, 0.3]), 0.4).tolist() == [1, 3]
    assert clean_images(np.array([0.9, 0.1]), 0.4).tolist() == []
