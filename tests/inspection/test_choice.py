"""The number of types chosen from the data: well-separated groups are counted right by both rules."""

import numpy as np
import pytest

from steelnb.inspection.choice import candidates, choose_types


def separated(groups: int, per_group: int = 15, dims: int = 16, seed: int = 0) -> np.ndarray:
    """`groups` tight clusters around orthogonal centres, L2-normalised as the type stage's points are."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dims)[:groups] * 4
    points = np.concatenate([c + 0.4 * rng.standard_normal((per_group, dims)) for c in centres])
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.mark.parametrize("rule", ["silhouette", "eigengap"])
@pytest.mark.parametrize("groups", [2, 3, 5, 7])
def test_well_separated_groups_are_counted(rule, groups):
    choice = choose_types(separated(groups, seed=groups), 2, 8, rule)
    assert choice.k == groups
    assert choice.scores.k.tolist() == list(range(2, 9))
    assert rule in choice.how and f"k = {groups}" in choice.how


def test_the_range_is_capped_by_the_number_of_points():
    assert candidates(5, 2, 8) == [2, 3, 4]
    assert candidates(2, 2, 8) == []
    assert choose_types(separated(2, per_group=2), 2, 8).scores.k.tolist() == [2, 3]


def test_too_few_points_to_choose_is_an_error():
    with pytest.raises(ValueError, match="needs at least 3 images"):
        choose_types(np.eye(2), 2, 8)
