"""Profiles as data: their settings and the weights each backbone starts from."""

import pytest

from steelnb.profiles import PROFILES, get_profile


def test_backbone_weights_follow_the_profile():
    assert get_profile("cpu").weights_for("efficientnet_lite0") == "offline"
    assert get_profile("cpu").weights_for("resnet18") == "random"  # no offline weights for it
    assert get_profile("paper").weights_for("resnet50") == "timm"
    assert get_profile("ci").weights_for("resnet18") == "random"


def test_every_profile_is_named_by_its_key_and_unknown_ones_are_refused():
    assert all(get_profile(name).name == name for name in PROFILES)
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        get_profile("laptop")
