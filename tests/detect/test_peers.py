"""Peers (`detect/peers.py`): a busy kind of image stops outranking a defect of a quiet kind, an image is never its
own peer, a few defective peers do not hide a defect, and metrics.json says when and why peers were not used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steelnb.detect import DetectConfig, detect, run
from steelnb.detect.peers import against_peers, alike, peer_scores, peers_of
from steelnb.detect.scoring import image_scores, smooth
from tests.detect.conftest import FAST, pile, plant, texture


def two_kinds(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Looks (n, 8) of two kinds of image, alternating, and scores: the busy kind's 3 times the quiet kind's."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n) % 2
    looks = np.eye(8)[kind * 4] * 5 + rng.normal(0, 0.3, (n, 8))
    scores = np.where(kind == 1, 3.0, 1.0) * np.exp(rng.normal(0, 0.05, n))
    return looks, scores


def test_a_busy_kind_no_longer_outranks_a_defect_of_a_quiet_kind():
    looks, scores = two_kinds()
    scores[4] = 2.5  # a defect in a quiet image: above its kind, below every busy image
    assert (scores[1::2] > scores[4]).all()
    assert int(np.argmax(peer_scores(scores, looks, k=5, weight=1.0))) == 4
    np.testing.assert_allclose(peer_scores(scores, looks, k=5, weight=0.0), scores)  # weight 0: as they came


def test_an_image_is_never_its_own_peer_even_among_twins():
    looks = np.repeat(np.eye(3), 10, axis=0)  # ten identical looks of each of three kinds: ties decide the order
    found = peers_of(looks, 3)
    assert found.shape == (30, 3)
    assert not (found == np.arange(30)[:, None]).any()
    assert (found // 10 == np.arange(30)[:, None] // 10).all()  # its peers are its own kind


def test_peers_refuse_what_they_cannot_answer():
    looks, scores = two_kinds(6)
    with pytest.raises(ValueError, match="k must be from 1 to 5"):
        peers_of(looks, 6)
    scores[2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        peer_scores(scores, looks, 3, 0.5)
    assert alike(np.ones((6, 4))) and not alike(looks)


def test_a_few_defective_peers_do_not_hide_a_defect():
    looks, scores = two_kinds()
    scores[[0, 2]] = 2.5  # two defects of the quiet kind, likely each other's peers
    assert set(np.argsort(-peer_scores(scores, looks, k=7, weight=1.0))[:2]) == {0, 2}


def test_the_scores_keep_their_scale():
    looks, scores = two_kinds()
    adjusted = peer_scores(scores, looks, k=5, weight=0.5)
    assert (adjusted > 0).all() and 0.5 < np.median(adjusted) / np.median(scores) < 2


@pytest.fixture(scope="module")
def marked() -> np.ndarray:
    images = plant(texture(24, 64, seed=3), 5, 20, 30, 10, 10)
    images[1] = images[0]  # twins: the same look
    return images


def config(**settings) -> DetectConfig:  # one share given: peers are applied to the scores of each share alike
    return DetectConfig(**{**FAST, "max_side": 64, "seed": 0, "top_share": 0.01, **settings})


def test_detect_scores_each_image_against_its_peers_by_its_mean_feature(marked, monkeypatch):
    seen = {}

    def spy_peers(looks, k):
        seen.update(looks=looks, k=k)
        return peers_of(looks, k)

    def spy_scores(scores, peers, weight):
        seen.update(scores=scores.copy(), weight=weight)
        return against_peers(scores, peers, weight)

    monkeypatch.setattr(run, "peers_of", spy_peers)
    monkeypatch.setattr(run, "against_peers", spy_scores)
    without = detect(config(peers=0), pile(marked))
    found = detect(config(peers=5, peer_weight=0.5), pile(marked))
    np.testing.assert_allclose(seen["scores"], without.table["score"], rtol=1e-5)  # the same maps beneath
    assert seen["looks"].shape[0] == 24 and (seen["k"], seen["weight"]) == (5, 0.5)
    np.testing.assert_array_equal(seen["looks"][0], seen["looks"][1])  # each image's own look
    assert not np.allclose(seen["looks"][0], seen["looks"][2])
    np.testing.assert_allclose(found.table["score"], peer_scores(seen["scores"], seen["looks"], 5, 0.5), rtol=1e-6)
    assert found.metrics["peers"] == {"used": True, "k": 5, "weight": 0.5}
    from_maps = image_scores(smooth(torch.from_numpy(found.maps), 1.0), sigma=0, top_share=0.01)
    np.testing.assert_allclose(from_maps, found.table["score"], rtol=1e-5)  # each map scaled as its score: one scale
    assert found.table[["peak_y", "peak_x"]].equals(without.table[["peak_y", "peak_x"]])  # the peaks stay
    assert without.metrics["peers"] == {"used": False, "why": "--peers 0"}


def test_a_pile_too_small_for_its_peers_keeps_its_scores(marked):
    small = detect(config(peers=10), pile(marked[:15])).metrics["peers"]
    assert not small["used"] and small["why"].startswith("15 images: fewer than 20")
    many = detect(config(peers=30), pile(marked)).metrics["peers"]
    assert not many["used"] and many["why"].startswith("24 images: fewer than 31")
    same = detect(config(peers=5), pile(np.repeat(marked[:1], 24, axis=0))).metrics["peers"]
    assert same == {"used": False, "why": "every image looks the same"}


def test_one_search_for_peers_serves_every_share(marked, monkeypatch):
    searched = []
    monkeypatch.setattr(run, "peers_of", lambda looks, k: searched.append(k) or peers_of(looks, k))
    found = detect(config(peers=5, top_share=0.0), pile(marked))  # the share chosen from the pile
    assert len(found.metrics["top_share"]["chosen_from"]) > 1 and searched == [5]
