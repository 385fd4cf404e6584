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
