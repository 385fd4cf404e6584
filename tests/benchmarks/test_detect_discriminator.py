"""The discriminator's benchmark (benchmarks/detect_discriminator.py): a row for every noise, share and weight."""

import doctest
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_discriminator  # benchmarks/ is not a package: its folder on the path


def test_every_noise_share_and_weight_gets_a_row_beside_the_default(tmp_path, monkeypatch, tiny_pile):
    trained = []  # the clean images and the noise of each training

    def recorded(features, clean, *args, **kwargs):
        trained.append((len(clean), args[2]))
        return maps_of(features, clean, *args, **kwargs)

    maps_of = detect_discriminator.discriminator_maps
    monkeypatch.setattr(detect_discriminator, "discriminator_maps", recorded)
    tiny_pile(tmp_path)  # six images with an odd square
    rows = detect_discriminator.pile_rows("tiny", tmp_path, [0], noises=[1.0, 2.0], shares=[0.5, 0.7])
    settings = [(row["noise"], row["share"], row["weight"]) for row in rows]
    assert settings == [(0.0, 0.0, 0.0)] + [(noise, share, weight) for noise in (1.0, 2.0) for share in (0.5, 0.7)
                                            for weight in detect_discriminator.WEIGHTS]
    assert trained == [(24, 1.0), (33, 1.0), (24, 2.0), (33, 2.0)]  # half and 70 % of the 48 images, each noise
    assert all(row["auroc"] > 0.9 for row in rows)  # the odd squares stand out in every setting
    assert rows[0]["seconds"] == 0 and all(row["seconds"] > 0 for row in rows[1:])


def test_the_examples_in_its_docstrings_hold():
    assert doctest.testmod(detect_discriminator).failed == 0


def test_the_estimated_share_trains_on_what_the_pile_gives_and_once_where_another_setting_did(
        tmp_path, monkeypatch, tiny_pile):
    trained = []

    def recorded(features, clean, *args, **kwargs):
        trained.append(len(clean))
        return maps_of(features, clean, *args, **kwargs)

    maps_of = detect_discriminator.discriminator_maps
    monkeypatch.setattr(detect_discriminator, "discriminator_maps", recorded)
    tiny_pile(tmp_path)  # 48 images: under AUTO_MIN, so the package's share (0.7), not estimated
    shares = [0.7, detect_discriminator.ESTIMATED]
    rows = detect_discriminator.pile_rows("tiny", tmp_path, [0], noises=[1.0], shares=shares)
    assert trained == [33]  # the estimate's 0.7 is the given 0.7's model
    given, estimated = ([row for row in rows if row["share"] == share] for share in shares)
    assert [row["auroc"] for row in given] == [row["auroc"] for row in estimated]
    assert {row["trained_share"] for row in estimated} == {0.7} and all(row["estimate"] is None for row in rows)
    monkeypatch.setattr(detect_discriminator, "clean_share", lambda scores: (0.5, 0.45))  # as a heavy pile's
    rows = detect_discriminator.pile_rows("tiny", tmp_path, [1], noises=[1.0], shares=shares)
    assert trained == [33, 33, 24]  # seed 1: the given share, then half of the 48 images
    estimated = [row for row in rows if row["share"] == detect_discriminator.ESTIMATED]
    assert {(row["trained_share"], row["estimate"]) for row in estimated} == {(0.5, 0.45)}
