"""The paper's splits and sets, on small hand-made ImageSets."""

from __future__ import annotations

import numpy as np
import pytest

from steelnb.data import DataError, ImageSet, protocols, synthetic


def make_set(labels, class_names, defective=None, meta=None, name="fake") -> ImageSet:
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    return ImageSet(
        name=name,
        images=np.zeros((n, 1, 2, 2), np.uint8),
        labels=labels,
        defective=np.asarray(defective if defective is not None else (labels > 0), np.int8),
        class_names=tuple(class_names),
        paths=tuple(f"img{i:03d}" for i in range(n)),
        meta=meta or {},
    )


def counts(ds: ImageSet) -> list[int]:
    return np.bincount(ds.labels, minlength=ds.n_classes).tolist()


@pytest.fixture
def severstal_like() -> ImageSet:
    """20 defect-free strips, 8 of each ClassId 1-4, plus 3 two-class strips labelled 2 (class_ids [2, 3])."""
    labels = [0] * 20 + [c for c in range(1, 5) for _ in range(8)] + [2] * 3
    paths = [f"img{i:03d}" for i in range(len(labels))]
    class_ids = {path: ([] if label == 0 else [label]) for path, label in zip(paths, labels, strict=True)}
    for path in paths[-3:]:
        class_ids[path] = [2, 3]
    return make_set(labels, ("defect-free", "1", "2", "3", "4"), meta={"class_ids": class_ids}, name="severstal")


# --- stratified_split --------------------------------------------------------------------------


def test_stratified_split_keeps_class_proportions():
    ds = make_set([0] * 40 + [1] * 10 + [2] * 2, ("a", "b", "c"))
    train, test = protocols.stratified_split(ds, 0.25, seed=1)
    assert counts(test) == [10, 2, 1] and counts(train) == [30, 8, 1]
    assert set(train.paths).isdisjoint(test.paths) and len(train) + len(test) == len(ds)
    assert list(test.paths) == sorted(test.paths)  # original order kept
    assert train.name == "fake-train" and test.meta["split"]["part"] == "test"
    assert test.meta["split"] == {"protocol": "stratified", "test_fraction": 0.25, "seed": 1, "part": "test"}


def test_stratified_split_is_seeded():
    ds = make_set([0] * 30 + [1] * 30, ("a", "b"))
    first, again, other = (protocols.stratified_split(ds, 0.5, seed=s)[1].paths for s in (3, 3, 4))
    assert first == again and first != other


def test_stratified_split_rejects_bad_input():
    ds = make_set([0, 1, 0, 1], ("a", "b"))
    for fraction in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="test_fraction"):
            protocols.stratified_split(ds, fraction)
    with pytest.raises(DataError, match="class label"):
        protocols.stratified_split(ds.relabel(np.full(4, -1), ()), 0.5)


# --- neu_split ---------------------------------------------------------------------------------


def test_neu_split_takes_fixed_numbers_per_class():
    ds = make_set(np.repeat(np.arange(6), 12), [f"c{i}" for i in range(6)])
    train, test = protocols.neu_split(ds, n_train_per_class=8, n_test_per_class=3, seed=0)
    assert counts(train) == [8] * 6 and counts(test) == [3] * 6
    assert set(train.paths).isdisjoint(test.paths)
    assert train.meta["split"]["protocol"] == "neu"
    assert protocols.neu_split(ds, 8, 3, seed=0)[1].paths == test.paths
    assert protocols.neu_split(ds, 8, 3, seed=1)[1].paths != test.paths


def test_neu_split_says_how_many_a_short_class_has():
    ds = make_set([0] * 12 + [1] * 5, ("full", "short"))
    with pytest.raises(DataError, match=r"'short'.*needs 11.*only 5"):
        protocols.neu_split(ds, n_train_per_class=8, n_test_per_class=3)


# --- severstal_set -----------------------------------------------------------------------------


def test_two_cluster_set(severstal_like: ImageSet):
    ds = protocols.severstal_set(severstal_like, "2-cluster", n_normal=10, n_per_class=3)
    assert ds.class_names == ("defect-free", "defective") and ds.name == "severstal-2-cluster"
    assert counts(ds) == [10, 12]
    np.testing.assert_array_equal(ds.labels, ds.defective)
    assert not set(ds.paths) & set(severstal_like.paths[-3:])  # never a strip with two ClassIds
    assert ds.meta["severstal_set"] == {"kind": "2-cluster", "seed": 0, "n_normal": 10, "n_per_class": 3}


def test_five_cluster_set_has_the_same_images_with_types(severstal_like: ImageSet):
    two = protocols.severstal_set(severstal_like, "2-cluster", seed=2, n_normal=10, n_per_class=3)
    five = protocols.severstal_set(severstal_like, "5-cluster", seed=2, n_normal=10, n_per_class=3)
    assert five.paths == two.paths
    assert five.class_names == ("defect-free", "1", "2", "3", "4") and counts(five) == [10, 3, 3, 3, 3]


@pytest.mark.parametrize(("kind", "class_id"), [("I", 1), ("II", 2), ("III", 3), ("IV", 4)])
def test_single_class_sets(severstal_like: ImageSet, kind: str, class_id: int):
    ds = protocols.severstal_set(severstal_like, kind, n_normal=10, n_per_class=2)
    assert counts(ds) == [10, 8] and ds.class_names == ("defect-free", "defective")
    original = dict(zip(severstal_like.paths, severstal_like.labels.tolist(), strict=True))
    assert {original[p] for p in ds.paths} == {0, class_id}
    assert not set(ds.paths) & set(severstal_like.paths[-3:])


def test_set_v_has_mixed_defects(severstal_like: ImageSet):
    ds = protocols.severstal_set(severstal_like, "V", n_normal=10, n_per_class=20)
    assert counts(ds) == [10, 20]
    original = dict(zip(severstal_like.paths, severstal_like.labels.tolist(), strict=True))
    assert len({original[p] for p in ds.paths if original[p] > 0}) > 1


def test_every_kind_draws_the_same_defect_free_images(severstal_like: ImageSet):
    normals = {
        kind: [p for p, label in zip(ds.paths, ds.labels, strict=True) if label == 0]
        for kind in ("2-cluster", "II", "V")
        for ds in [protocols.severstal_set(severstal_like, kind, seed=5, n_normal=10, n_per_class=2)]
    }
    assert normals["2-cluster"] == normals["II"] == normals["V"]
    other = protocols.severstal_set(severstal_like, "2-cluster", seed=6, n_normal=10, n_per_class=2)
    assert [p for p, label in zip(other.paths, other.labels, strict=True) if label == 0] != normals["V"]


def test_severstal_set_says_how_many_a_class_has(severstal_like: ImageSet):
    with pytest.raises(DataError, match=r"ClassId 2.*needs 40.*only 8"):
        protocols.severstal_set(severstal_like, "II", n_normal=10, n_per_class=10)
    with pytest.raises(DataError, match=r"defect-free.*only 20"):
        protocols.severstal_set(severstal_like, "2-cluster", n_normal=30, n_per_class=1)


def test_severstal_set_rejects_bad_kind_and_other_sets(severstal_like: ImageSet):
    with pytest.raises(ValueError, match="kind"):
        protocols.severstal_set(severstal_like, "VI")
    with pytest.raises(DataError, match="not a labelled Severstal set"):
        protocols.severstal_set(make_set([0, 1], ("a", "b")), "2-cluster")


# --- defect_vs_normal, cap_per_class -----------------------------------------------------------


def test_defect_vs_normal_relabels_by_flag():
    ds = synthetic.load(image_size=32, n_images=30, defect_rate=0.5, seed=2)
    binary = protocols.defect_vs_normal(ds)
    assert binary.class_names == ("defect-free", "defective")
    np.testing.assert_array_equal(binary.labels, ds.defective)
    assert binary.meta["relabelled_from"] == synthetic.CLASSES
    np.testing.assert_array_equal(ds.labels, synthetic.load(image_size=32, n_images=30, defect_rate=0.5, seed=2).labels)
    with pytest.raises(DataError, match="defect flag"):
        protocols.defect_vs_normal(make_set([0, 1], ("a", "b"), defective=[1, -1]))


def test_cap_per_class():
    ds = make_set([0] * 10 + [1] * 2 + [2] * 5, ("a", "b", "c"))
    capped = protocols.cap_per_class(ds, 3, seed=0)
    assert counts(capped) == [3, 2, 3]
    assert list(capped.paths) == sorted(capped.paths)
    assert capped.meta["cap_per_class"] == {"n": 3, "seed": 0}
    assert protocols.cap_per_class(ds, 3, seed=0).paths == capped.paths
    assert protocols.cap_per_class(ds, 3, seed=1).paths != capped.paths
    unlabelled = protocols.cap_per_class(ds.relabel(np.full(len(ds), -1), ()), 4)
    assert len(unlabelled) == 4
    with pytest.raises(ValueError, match="n must be"):
        protocols.cap_per_class(ds, 0)
