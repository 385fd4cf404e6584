"""Synthetic generator, folder reader, image decoding and its cache, ImageSet invariants."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from steelnb.data import DataError, ImageSet, decode, folder, load_dataset, synthetic


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def classes(tmp_path: Path) -> Path:
    """root/{good,bad}/ with 3 and 2 grayscale 20 x 20 PNGs."""
    rng = np.random.default_rng(0)
    for name, n in (("good", 3), ("bad", 2)):
        for i in range(n):
            save(tmp_path / "root" / name / f"{i}.png", noise(rng, (20, 20)))
    return tmp_path / "root"


# --- synthetic ---------------------------------------------------------------------------------


def test_synthetic_form():
    ds = synthetic.load(image_size=48, n_images=30, defect_rate=0.4, seed=3)
    assert ds.name == "synthetic"
    assert ds.images.shape == (30, 1, 48, 48) and ds.images.dtype == np.uint8
    assert ds.class_names == synthetic.CLASSES and ds.class_names[0] == "defect-free"
    assert ds.paths[7] == "synthetic/000007"
    np.testing.assert_array_equal(ds.defective, (ds.labels > 0).astype(np.int8))
    assert ds.has_labels and ds.has_defect_flags
    assert ds.images.std() > 5  # a texture, not a flat grey


def test_synthetic_is_deterministic_for_a_seed():
    a, b = (synthetic.load(image_size=32, n_images=40, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    other = synthetic.load(image_size=32, n_images=40, seed=6)
    assert not np.array_equal(a.images, other.images)


@pytest.mark.parametrize(("n", "rate"), [(50, 0.3), (600, 0.2), (7, 0.0), (13, 1.0)])
def test_synthetic_defect_rate_is_exact_and_types_share_equally(n, rate):
    ds = synthetic.load(image_size=32, n_images=n, defect_rate=rate)
    assert int(ds.defective.sum()) == round(n * rate)
    counts = np.bincount(ds.labels[ds.labels > 0], minlength=7)[1:]
    if round(n * rate) >= 6:
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_images": 0}, "n_images"),
        ({"n_images": 2.5}, "n_images"),
        ({"defect_rate": -0.1}, "defect_rate"),
        ({"defect_rate": 1.5}, "defect_rate"),
        ({"image_size": 31}, "image_size"),
    ],
)
def test_synthetic_rejects_bad_arguments(options, message):
    with pytest.raises(ValueError, match=message):
        synthetic.load(**options)


def test_synthetic_default_size_is_fast():
    start = time.perf_counter()
    ds = synthetic.load()
    assert len(ds) == 600 and ds.images.shape[-1] == 128
    assert time.perf_counter() - start < 5.0  # about 0.5 s on one core; 5 s allows a busy machine


def outlier_fractions(images: np.ndarray) -> np.ndarray:
    """Per image: fractions of pixels far darker / brighter than their neighbourhood (robust z > 4)."""
    x = images[:, 0].astype(np.float32)
    residual = x - ndimage.uniform_filter(x, size=(1, 9, 9))
    z = residual / (1.4826 * np.median(np.abs(residual), axis=(1, 2), keepdims=True))
    return np.stack([(z < -4).mean(axis=(1, 2)), (z > 4).mean(axis=(1, 2))], axis=1)


def test_synthetic_defects_are_visible_and_cluster_apart():
    ds = synthetic.load(image_size=64, n_images=300, defect_rate=0.3, seed=1)
    features = outlier_fractions(ds.images)
    outliers = features.sum(axis=1)
    normal_high = np.percentile(outliers[ds.labels == 0], 95)
    for label in range(1, 7):
        assert np.median(outliers[ds.labels == label]) > normal_high, ds.class_names[label]
    clusters = KMeans(2, n_init=10, random_state=0).fit_predict(np.log(features + 1e-4))
    assert adjusted_rand_score(ds.defective, clusters) > 0.4


def test_load_dataset_synthetic_and_unknown_name():
    assert load_dataset("synthetic", image_size=32, n_images=5).images.shape == (5, 1, 32, 32)
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("no-such-set")


# --- folder reader -----------------------------------------------------------------------------


def test_folder_with_class_subfolders(classes: Path):
    ds = folder.load(classes, image_size=16, normal_class="")
    assert ds.class_names == ("bad", "good")
    assert ds.images.shape == (5, 1, 16, 16)
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 1])
    assert ds.paths[0] == str(Path("bad") / "0.png")
    assert not ds.has_defect_flags and ds.skipped == ()
    assert ds.meta["source_sizes"] == {"20x20": 5} and ds.meta["source_modes"] == {"L": 5}


def test_folder_normal_class_sets_defect_flags(classes: Path):
    for given in ("good", None):  # named, or found by its name
        ds = folder.load(classes, image_size=16, normal_class=given)
        np.testing.assert_array_equal(ds.defective, [1, 1, 0, 0, 0])
        assert ds.meta["normal_class"] == "good"
    assert "found by its name" in ds.meta["normal_class_note"]
    with pytest.raises(DataError, match="normal class 'ok'"):
        folder.load(classes, image_size=16, normal_class="ok")


@pytest.mark.parametrize(("names", "found"), [
    (("bad", "good"), "good"), (("OK", "scratch"), "OK"), (("Defect-Free", "dent"), "Defect-Free"),
    (("crack", "no_defect"), "no_defect"), (("NON-DEFECTIVE", "pit"), "NON-DEFECTIVE"), (("normal",), "normal"),
    (("crack", "pit"), None), (("good", "ok", "pit"), None), (("goodish", "free_text"), None),
])
def test_normal_class_is_found_by_its_name(names, found):
    name, note = folder.normal_class_of(names, None)
    assert name == found
    assert ("--normal-class" in note) and (found is None or repr(found) in note)


def test_a_given_normal_class_wins_and_must_exist():
    assert folder.normal_class_of(("good", "pass"), "pass")[0] == "pass"
    assert folder.normal_class_of(("good", "pit"), "")[0] is None
    with pytest.raises(DataError, match=r"'Good' is not a sub-folder.*\['good', 'pit'\]"):
        folder.normal_class_of(("good", "pit"), "Good")


def test_flat_folder_is_unlabelled(tmp_path: Path):
    rng = np.random.default_rng(1)
    for i in range(3):
        save(tmp_path / f"{i}.jpg", noise(rng, (24, 24)))
    (tmp_path / "notes.txt").write_text("not an image, and not named like one")
    ds = folder.load(tmp_path, image_size=16)
    assert len(ds) == 3 and ds.class_names == ()
    assert not ds.has_labels and (ds.labels == -1).all() and (ds.defective == -1).all()
    assert ds.summary()["classes"] == {"(unlabelled)": 3}


def test_colour_and_grayscale_mixed_give_three_channels(tmp_path: Path):
    rng = np.random.default_rng(2)
    gray = save(tmp_path / "a" / "gray.png", noise(rng, (16, 16)))
    save(tmp_path / "a" / "colour.png", noise(rng, (16, 16, 3)))
    ds = folder.load(tmp_path, image_size=16)
    assert ds.images.shape == (2, 3, 16, 16)
    gray_image = ds.images[ds.paths.index(str(Path("a") / gray.name))]
    np.testing.assert_array_equal(gray_image[0], gray_image[1])
    np.testing.assert_array_equal(gray_image[0], np.asarray(Image.open(gray)))


def test_rgb_files_with_equal_channels_count_as_grayscale(tmp_path: Path):
    rng = np.random.default_rng(3)
    for i, mode in enumerate(("RGB", "RGBA")):
        Image.fromarray(noise(rng, (16, 16))).convert(mode).save(tmp_path / f"{i}.png")
    ds = folder.load(tmp_path, image_size=16)
    assert ds.images.shape == (2, 1, 16, 16)


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path: Path):
    pixels = np.zeros((16, 16), np.uint16)
    pixels[:, :8] = 65535
    pixels[:, 8:] = 128 * 257
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    ds = folder.load(tmp_path, image_size=16)
    assert ds.images.dtype == np.uint8
    assert (ds.images[0, 0, :, :8] == 255).all() and (ds.images[0, 0, :, 8:] == 128).all()


def test_odd_sizes_are_resized_to_squares(tmp_path: Path):
    rng = np.random.default_rng(4)
    save(tmp_path / "tall.png", noise(rng, (53, 37)))
    save(tmp_path / "wide.bmp", noise(rng, (9, 101)))
    ds = folder.load(tmp_path, image_size=24)
    assert ds.images.shape == (2, 1, 24, 24)
    assert ds.meta["source_sizes"] == {"37x53": 1, "101x9": 1}


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match=r"does not exist.*STEELNB_DATA"):
        folder.load(tmp_path / "nowhere")


def test_empty_class_folder_is_a_clear_error(classes: Path):
    (classes / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.*holds no images"):
        folder.load(classes, image_size=16)


def test_unreadable_files_are_skipped_and_listed(classes: Path):
    (classes / "bad" / "zero.png").write_bytes(b"")
    (classes / "bad" / "text.png").write_text("hello, I am not a PNG")
    whole = (classes / "good" / "0.png").read_bytes()
    (classes / "good" / "cut.png").write_bytes(whole[: len(whole) // 2])
    ds = folder.load(classes, image_size=16)
    assert len(ds) == 5
    reasons = dict(ds.skipped)
    assert set(reasons) == {str(Path("bad") / "zero.png"), str(Path("bad") / "text.png"), str(Path("good") / "cut.png")}
    assert "empty" in reasons[str(Path("bad") / "zero.png")]
    assert "not an image" in reasons[str(Path("bad") / "text.png")]
    assert "truncated" in reasons[str(Path("good") / "cut.png")]
    assert ds.summary()["skipped"] == 3


def test_a_folder_of_unreadable_files_is_an_error(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("no")
    with pytest.raises(DataError, match="none of the 2 image files"):
        folder.load(tmp_path, image_size=16)


# --- decode cache ------------------------------------------------------------------------------


def test_cache_is_reused_and_invalidated_when_a_file_changes(classes: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    calls = []
    real = decode._decode_all

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(decode, "_decode_all", counting)
    first = folder.load(classes, image_size=16)
    assert len(calls) == 1 and len(list((tmp_path / "cache").glob("images-*.npz"))) == 1
    second = folder.load(classes, image_size=16)
    assert len(calls) == 1, "decoded again although no file changed"
    np.testing.assert_array_equal(first.images, second.images)
    assert second.paths == first.paths and second.meta["source_sizes"] == first.meta["source_sizes"]

    changed = classes / "good" / "1.png"
    save(changed, np.full((20, 20), 7, np.uint8))
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = folder.load(classes, image_size=16)
    assert len(calls) == 2
    assert (third.images[third.paths.index(str(Path("good") / "1.png"))] == 7).all()
    folder.load(classes, image_size=12)
    assert len(calls) == 3  # another size is another cache entry


def test_a_cache_entry_without_source_modes_is_decoded_again(classes: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    folder.load(classes, image_size=16)
    entry = next((tmp_path / "cache").glob("images-*.npz"))
    with np.load(entry) as cached:
        images, meta = cached["images"], json.loads(str(cached["meta"]))
    del meta["source_modes"]  # as written before modes were recorded
    np.savez(entry, images=images, meta=np.array(json.dumps(meta)))
    assert folder.load(classes, image_size=16).meta["source_modes"] == {"L": 5}


def test_cache_keeps_the_skipped_list(classes: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    (classes / "bad" / "zero.png").write_bytes(b"")
    first = folder.load(classes, image_size=16)
    second = folder.load(classes, image_size=16)
    assert second.skipped == first.skipped and len(second.skipped) == 1


def test_cache_off_writes_nothing(classes: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", "off")
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    folder.load(classes, image_size=16)
    assert decode.default_cache_dir() is None
    assert not (tmp_path / "home").exists()


# --- ImageSet ----------------------------------------------------------------------------------


def tiny_set(labels: list[int]) -> ImageSet:
    n = len(labels)
    return ImageSet(
        name="tiny",
        images=np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(4, axis=2).repeat(4, axis=3),
        labels=np.asarray(labels, np.int64),
        defective=np.asarray([int(label > 0) for label in labels], np.int8),
        class_names=("a", "b", "c"),
        paths=tuple(f"p{i}" for i in range(n)),
        meta={"note": 1},
    )


def test_subset_accepts_a_boolean_mask():
    ds = tiny_set([0, 1, 2, 1])
    picked = ds.subset(ds.labels == 1)
    assert picked.paths == ("p1", "p3")
    np.testing.assert_array_equal(picked.images[:, 0, 0, 0], [1, 3])


def test_subset_and_relabel_do_not_share_meta():
    ds = tiny_set([0, 1, 2])
    ds.subset([0, 1]).meta["note"] = 2
    ds.relabel(np.zeros(3), ("x",)).meta["note"] = 3
    assert ds.meta["note"] == 1


def test_labels_outside_the_classes_are_rejected():
    with pytest.raises(ValueError, match="index into"):
        tiny_set([0, 3])
    with pytest.raises(ValueError, match="index into"):
        tiny_set([0, 1]).relabel(np.array([0, 1]), ("only",))
