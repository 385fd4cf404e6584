"""Which images play each experiment: real data where it is, stand-ins that say so, and their sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelnb.data import DataError, ImageSet, synthetic
from steelnb.data.neu import CLASSES as NEU_CLASSES
from steelnb.study import datasets


def write_dagm(root: Path, n_normal: int = 20, n_defective: int = 4) -> Path:
    split = root / "dagm" / "Class1" / "Test"
    (split / "Label").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["1"]
    for i in range(n_normal + n_defective):
        name = f"{i:04d}.PNG"
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(split / name)
        flag = int(i >= n_normal)
        rows.append(f"{i}\t{flag}\t{name}\t0\t{f'{i:04d}_label.PNG' if flag else '0'}")
    (split / "Label" / "Labels.txt").write_text("\n".join(rows) + "\n")
    return root


def write_severstal(root: Path, n_normal: int = 48, n_per_class: int = 40) -> Path:
    folder = root / "severstal"
    (folder / "train_images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["ImageId,ClassId,EncodedPixels"]
    for i in range(n_normal + 4 * n_per_class):
        name = f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (16, 100), dtype=np.uint8)).save(folder / "train_images" / name)
        if i >= n_normal:
            lines.append(f"{name},{1 + (i - n_normal) // n_per_class},1 10")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def counts(ds: ImageSet) -> dict[str, int]:
    return {c: int((ds.labels == i).sum()) for i, c in enumerate(ds.class_names)}


def test_missing_data_falls_back_to_synthetic_and_says_so(no_real_data):
    with pytest.warns(UserWarning, match="synthetic"):
        study = datasets.capped_set("neu", image_size=32, max_per_class=3)
    data, info = study.data, study.info
    assert data.name == "synthetic" and len(data) == 3 * data.n_classes
    assert study.stand_in and study.source == "synthetic" and study.labels == "classes"
    assert "standing in for NEU" in study.caption == info["description"]
    assert "neu was not found" in study.note and "$STEELNB_DATA" in study.note


def test_a_data_root_without_the_set_gets_the_stand_in_but_a_broken_set_is_an_error(tmp_path):
    with pytest.warns(UserWarning, match=f"no neu/ folder under {tmp_path}"):
        study = datasets.capped_set("neu", data_root=tmp_path, image_size=32, max_per_class=2)
    assert study.data.name == "synthetic" and study.stand_in
    (tmp_path / "neu").mkdir()  # there, but holds no NEU class folder
    with pytest.raises(DataError):
        datasets.capped_set("neu", data_root=tmp_path, image_size=32)
    with pytest.raises(DataError):  # and so is the set's own folder given as the root
        datasets.capped_set("neu", data_root=tmp_path / "neu", image_size=32)
    with pytest.raises(DataError, match="is not a folder"):
        datasets.capped_set("neu", data_root=tmp_path / "mistyped", image_size=32)


def fake_neu(root, per_class=2):
    for index, name in enumerate(NEU_CLASSES):
        (root / "neu" / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((40, 40), 20 * index + i, np.uint8)
            Image.fromarray(pixels).save(root / "neu" / name / f"{name}_{i}.png")


def test_real_data_is_found_via_the_environment(tmp_path, monkeypatch):
    fake_neu(tmp_path, per_class=3)
    monkeypatch.setenv("STEELNB_DATA", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study = datasets.capped_set("neu", image_size=32, max_per_class=2)
    data, info = study.data, study.info
    assert data.n_classes == 6 and len(data) == 12 and data.images.shape[-1] == 32
    assert info["dataset"] == "neu" and not info["stand_in"] and info["found_via"] == "$STEELNB_DATA"
    assert "the paper's NEU" in study.caption and "at most 2 per class" in study.caption
    assert study.source == "neu" and not study.stand_in and study.short == "NEU"


def test_scale_caps_the_reference_class_at_the_profiles_cap():
    assert datasets.scale("ci", 50) == pytest.approx(8 / 50)  # ci: max_per_class 8
    assert datasets.scale("cpu", 50) == 1.0  # cpu: max_per_class 60 >= 50
    assert datasets.scale("paper", 50) == 1.0  # paper: no cap
    assert datasets.scaled(300, 0.16) == 48 and datasets.scaled(3, 0.01) == 1 and datasets.scaled(3, 0.01, 2) == 2


def test_draw_counts_takes_what_exists_and_says_so():
    ds = synthetic.load(image_size=32, n_images=40, defect_rate=0.3, seed=0)
    drawn = datasets.draw_counts(ds, {0: 5, 1: 50}, seed=1)
    assert counts(drawn)["defect-free"] == 5 and counts(drawn)["scratches"] == 2
    assert drawn.meta["drawn"]["scratches"] == {"wanted": 50, "drawn": 2}
    again = datasets.draw_counts(ds, {0: 5, 1: 50}, seed=1)
    assert drawn.paths == again.paths and list(drawn.paths) == sorted(drawn.paths)


def test_synthetic_draw_keeps_only_the_listed_classes_in_that_order():
    data = datasets.synthetic_draw({"defect-free": 6, "patches": 3, "crazing": 2}, 32, 0, "x")
    assert data.class_names == ("defect-free", "patches", "crazing")
    assert counts(data) == {"defect-free": 6, "patches": 3, "crazing": 2}
    assert data.defective.tolist() == (data.labels > 0).astype(int).tolist()


@pytest.mark.parametrize("kind", datasets.KINDS)
def test_without_data_every_kind_falls_back_to_synthetic_and_says_so(kind, monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    study = datasets.study_set(kind, None, "ci")
    assert study.source == "synthetic" and study.stand_in
    assert "synthetic stand-in" in study.note and "not real images" in study.note
    assert "stands in for" in study.note and "no data root given" in study.note
    assert "stand-in for" in study.short
    expected_k = {"5-cluster": 5, "neu": 6}.get(kind, 2)
    assert study.n_clusters == expected_k == study.data.n_classes


def test_stand_in_sizes_follow_the_paper_proportions(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    sets = datasets.stand_in_sets(None, "ci", kinds=("5-cluster", "I", "V", "neu", "dagm"))
    assert counts(sets["5-cluster"].data) == {"defect-free": 48, "scratches": 8, "pitted_surface": 8,
                                              "inclusion": 8, "patches": 8}
    assert counts(sets["I"].data) == {"defect-free": 48, "defective": 32}
    assert counts(sets["V"].data) == {"defect-free": 48, "defective": 8}
    assert counts(sets["dagm"].data) == {"defect-free": 57, "defective": 8}  # DAGM class 1's 12.3 %
    assert set(counts(sets["neu"].data).values()) == {10}  # 8 train + 2 test per class
    train, test = datasets.neu_split(sets["neu"], "ci")
    assert len(train) == 48 and len(test) == 12


def test_draws_differ_by_seed_and_repeat_for_a_seed(monkeypatch):
    monkeypatch.delenv("STEELNB_DATA", raising=False)
    a, b = datasets.study_set("II", None, "ci", seed=0), datasets.study_set("II", None, "ci", seed=1)
    assert not np.array_equal(a.data.images, b.data.images)
    assert np.array_equal(a.data.images, datasets.study_set("II", None, "ci", seed=0).data.images)


def test_dagm_is_used_where_it_is_and_stands_in_for_severstal(tmp_path):
    root = write_dagm(tmp_path)
    dagm = datasets.study_set("dagm", root, "ci")
    assert dagm.source == "dagm" and not dagm.stand_in and counts(dagm.data) == {"defect-free": 20, "defective": 4}
    two = datasets.study_set("2-cluster", root, "ci")
    assert two.source == "dagm" and two.stand_in and two.labels == "defect"
    assert "stands in for Severstal 2-cluster" in two.note and f"no severstal/ folder under {root}" in two.note
    five = datasets.study_set("5-cluster", root, "ci")
    assert five.source == "synthetic" and five.stand_in
    v = datasets.study_set("V", root, "ci")  # wants 48 + 8, DAGM here has 20 + 4
    assert counts(v.data) == {"defect-free": 20, "defective": 4} and "fewer than wanted" in v.note
    assert datasets.study_set("neu", root, "ci").source == "synthetic"


def test_severstal_is_preferred_where_it_is(tmp_path):
    root = write_dagm(write_severstal(tmp_path))
    two = datasets.study_set("2-cluster", root, "ci")
    assert two.source == "severstal" and not two.stand_in
    assert counts(two.data) == {"defect-free": 48, "defective": 32}
    five = datasets.study_set("5-cluster", root, "ci")
    assert five.labels == "classes" and counts(five.data) == {"defect-free": 48, "1": 8, "2": 8, "3": 8, "4": 8}
    three = datasets.study_set("III", root, "ci")
    assert counts(three.data) == {"defect-free": 48, "defective": 32}
    assert datasets.study_set("V", root, "ci").source == "severstal"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        datasets.study_set("VI")
