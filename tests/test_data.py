"""Synthetic generator, folder reader, image decoding and its cache, ImageSet invariants."""

from __future__ import annotations

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


def test_scan_leaves_out_what_the_policy_says_and_lists_why(tmp_path: Path):
    rng = np.random.default_rng(5)
    root = tmp_path / "root"
    save(root / "a.png", noise(rng, (8, 8)))
    save(root / "sub" / "b.png", noise(rng, (8, 8)))
    save(tmp_path / "outside.png", noise(rng, (8, 8)))
    (root / "link-out.png").symlink_to(tmp_path / "outside.png")
    (root / "link-in.png").symlink_to("a.png")
    (root / "dangling.png").symlink_to("nowhere.png")
    (root / "self.png").symlink_to("self.png")
    (root / ".git").mkdir()
    (root / "README").write_text("about")
    files, left = folder.scan(root, root)
    assert files == [root / "a.png"]  # not recursive: sub/ is not looked into
    reasons = dict(left)
    assert set(reasons) == {"link-out.png", "link-in.png", "dangling.png", "self.png", ".git", "README"}
    assert "outside" in reasons["link-out.png"] and "the same file as a.png" in reasons["link-in.png"]
    assert reasons["dangling.png"] == "broken symlink" and reasons["self.png"] == "symlink loop"
    assert "hidden" in reasons[".git"] and "suffix none" in reasons["README"]
    files, _ = folder.scan(root, root, recursive=True)
    assert files == [root / "a.png", root / "sub" / "b.png"]


def test_named_readers_list_what_they_leave_out(tmp_path: Path):
    rng = np.random.default_rng(6)
    from steelnb.data import neu

    for name in neu.CLASSES:
        save(tmp_path / name / f"{name}_1.jpg", noise(rng, (16, 16)))
    (tmp_path / "crazing" / "._crazing_1.jpg").write_bytes(b"macOS metadata")
    ds = neu.load(tmp_path, image_size=16)
    assert len(ds) == 6
    assert ds.skipped == ((str(Path("crazing") / "._crazing_1.jpg"), "hidden (name starts with '.')"),)


def test_an_image_over_the_decompression_bomb_limit_is_skipped(tmp_path: Path, monkeypatch):
    rng = np.random.default_rng(7)
    save(tmp_path / "small.png", noise(rng, (16, 16)))
    save(tmp_path / "huge.png", noise(rng, (64, 64)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for size in (16, decode.Fit(64, 16)):  # Fit reads every header first
        ds = folder.load(tmp_path, image_size=size)
        assert ds.paths == ("small.png",)
        assert ds.skipped[0][0] == "huge.png" and "too large to decode safely" in ds.skipped[0][1]


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
    assert len(calls) == 1 and len(list((tmp_path / "cache").glob("images-*.npy"))) == 1
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


def test_new_content_with_the_same_size_and_mtime_is_decoded_again(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    image = save(tmp_path / "set" / "a.bmp", np.full((8, 8), 10, np.uint8))  # BMP: the size is the shape's
    save(tmp_path / "set" / "b.bmp", np.full((8, 8), 20, np.uint8))
    before = image.stat()
    assert (folder.load(tmp_path / "set", image_size=8).images[0] == 10).all()
    time.sleep(0.02)  # past the file system's timestamp tick
    save(image, np.full((8, 8), 99, np.uint8))
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))  # what `cp -p` or `touch -d` leave
    assert image.stat().st_size == before.st_size and image.stat().st_mtime_ns == before.st_mtime_ns
    assert (folder.load(tmp_path / "set", image_size=8).images[0] == 99).all()


def test_the_cache_is_pruned_to_its_budget_least_recently_used_first(classes: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    for size in (8, 12, 16):
        folder.load(classes, image_size=size)
    entries = {int(np.load(p, mmap_mode="r").shape[-1]): p for p in cache.glob("images-*.npy")}
    assert sorted(entries) == [8, 12, 16]
    for age, size in enumerate((16, 8, 12)):  # 12 used last, 16 longest ago
        os.utime(entries[size], (time.time() - 100 + 10 * age,) * 2)
    (cache / "images-x.123.tmp.npy").write_bytes(b"left by a killed process")
    os.utime(cache / "images-x.123.tmp.npy", (time.time() - 7200,) * 2)
    budget = entries[8].stat().st_size + entries[12].stat().st_size
    deleted = decode.prune_cache(cache, budget)
    assert sorted(p.name for p in deleted) == sorted([entries[16].name, "images-x.123.tmp.npy"])
    assert sorted(p.name for p in cache.iterdir()) == sorted([entries[8].name, entries[12].name])
    folder.load(classes, image_size=8)  # a hit marks the entry as used now
    assert entries[8].stat().st_mtime > entries[12].stat().st_mtime
    monkeypatch.setenv("STEELNB_CACHE_MAX_GB", "0")
    folder.load(classes, image_size=20)  # a new entry: all others go, the new one stays
    assert len(list(cache.glob("images-*.npy"))) == 1
    monkeypatch.setenv("STEELNB_CACHE_MAX_GB", "lots")
    with pytest.raises(DataError, match="STEELNB_CACHE_MAX_GB must be a number"):
        decode.cache_budget()


def test_a_cache_entry_without_source_modes_is_decoded_again(classes: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    folder.load(classes, image_size=16)
    entry = next((tmp_path / "cache").glob("images-*.npy"))
    images, meta = decode.read_entry(entry)
    del meta["source_modes"]  # an entry lacking modes (CACHE_VERSION 3 keys them): damaged, so decoded again
    decode.write_entry(entry, np.array(images), meta)
    assert folder.load(classes, image_size=16).meta["source_modes"] == {"L": 5}


def test_a_cache_entry_is_a_npy_file_mapped_not_read(classes: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    first = folder.load(classes, image_size=16)
    (entry,) = (tmp_path / "cache").glob("images-*.npy")
    assert isinstance(first.images, np.memmap) and Path(first.images.filename).resolve() == entry.resolve()
    np.testing.assert_array_equal(np.load(entry), first.images)  # any .npy reader sees the images
    np.testing.assert_array_equal(np.load(entry, mmap_mode="r"), first.images)
    again = folder.load(classes, image_size=16)
    assert isinstance(again.images, np.memmap)
    # Everything that takes images from a set: slices stay maps, picks are copies in memory; writing to a
    # set's images (copy-on-write) never reaches the cache.
    assert isinstance(again.images[1:3], np.memmap) and type(again.images[[2, 0]]) is np.ndarray
    picked = again.subset([4, 0])
    np.testing.assert_array_equal(picked.images, first.images[[4, 0]])
    again.images[0] = 255
    assert (np.load(entry, mmap_mode="r")[0] == first.images[0]).all() and not (first.images[0] == 255).all()
    assert torch_view_is_writable(again.images)


def torch_view_is_writable(images: np.ndarray) -> bool:
    """torch.from_numpy takes a mapped set without a warning (it is not read-only in memory)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return torch.from_numpy(images).shape == images.shape


def test_a_colour_image_after_grayscale_ones_gives_three_channels_through_the_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    gray = [save(tmp_path / "set" / f"{i}.png", noise(rng, (12, 12))) for i in range(3)]
    save(tmp_path / "set" / "9.png", noise(rng, (12, 12, 3)))  # last in order: the stored grays are redone
    (tmp_path / "set" / "5.png").write_bytes(b"")  # skipped in both passes
    cached = folder.load(tmp_path / "set", image_size=12)
    monkeypatch.setenv("STEELNB_CACHE", "off")
    plain = folder.load(tmp_path / "set", image_size=12)
    assert cached.images.shape == plain.images.shape == (4, 3, 12, 12)
    np.testing.assert_array_equal(cached.images, plain.images)
    assert cached.skipped == plain.skipped and len(cached.skipped) == 1
    first = np.asarray(Image.open(gray[0]))
    assert all((cached.images[0, c] == first).all() for c in range(3))


def test_a_set_of_only_unreadable_files_caches_an_empty_entry(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    files = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in files:
        path.write_bytes(b"not an image")
    for _ in range(2):  # written, then read back
        images, kept, skipped, _ = decode.load_images(files, 8)
        assert images.shape == (0, 1, 8, 8) and kept == [] and len(skipped) == 2


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


# --- the cache entry: written image by image, damaged ones rebuilt, the pixels decoding gives -------


def cache_entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("images-*"))


def test_an_entry_is_written_image_by_image_beside_its_name(classes: Path, tmp_path: Path, monkeypatch):
    """The decoding streams each image's row to the partial file as it comes (never the whole set in one write),
    and the entry's name appears only when the file is whole."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    writes, names = [], []

    class Recording:
        def __init__(self, file):
            self.file = file

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def write(self, data):
            writes.append(len(data))
            names.append(sorted(p.name for p in cache.iterdir()))
            return self.file.write(data)

    monkeypatch.setattr(decode, "open", lambda *a, **k: Recording(open(*a, **k)), raising=False)  # noqa: SIM115
    data = folder.load(classes, image_size=16)
    row = 1 * 16 * 16
    header, *rows, meta, final_header = writes
    assert header == final_header == decode.HEADER_BYTES
    assert rows == [row] * 5, "each image is one write of its own row"
    assert meta > decode.TRAILER.size
    assert all(len(n) == 1 and n[0].endswith(".tmp.npy") for n in names), "the entry's name appears only when whole"
    (entry,) = cache_entries(cache)
    assert entry.name.endswith(".npy") and ".tmp" not in entry.name
    assert entry.stat().st_size == decode.HEADER_BYTES + 5 * row + meta
    np.testing.assert_array_equal(np.load(entry), data.images)


def test_an_interrupted_decoding_leaves_neither_an_entry_nor_a_partial_file(classes: Path, tmp_path: Path,
                                                                             monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    real, calls = decode.read_image, []

    def interrupted(path, shape):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, shape)

    monkeypatch.setattr(decode, "read_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        folder.load(classes, image_size=16)
    assert cache_entries(cache) == []
    monkeypatch.setattr(decode, "read_image", real)
    data = folder.load(classes, image_size=16)
    assert len(data) == 5 and len(cache_entries(cache)) == 1


def damage_entry(entry: Path, how: str) -> None:
    """Damage a whole cache entry the way a crash, a full disk or another program could."""
    raw = entry.read_bytes()
    images, meta = decode.read_entry(entry)
    end = decode.HEADER_BYTES + images.nbytes
    if how == "empty":
        entry.write_bytes(b"")
    elif how == "header only":
        entry.write_bytes(raw[:decode.HEADER_BYTES])
    elif how == "rows cut":  # killed while writing: the header's count, half the rows, no meta
        entry.write_bytes(raw[:decode.HEADER_BYTES + images.nbytes // 2])
    elif how == "no meta":  # killed before the meta was written
        entry.write_bytes(raw[:end])
    elif how == "trailer cut":
        entry.write_bytes(raw[:-3])
    elif how == "bad magic":
        entry.write_bytes(raw[:-8] + b"xxxxxxxx")
    elif how == "meta not json":
        length = len(raw) - end - decode.TRAILER.size
        entry.write_bytes(raw[:end] + b"{" * length + raw[-decode.TRAILER.size:])
    elif how == "fewer rows than kept":  # a whole file whose count disagrees with its meta
        decode.write_entry(entry, np.array(images[:-1]), meta)
    elif how == "plain npy":  # an ordinary .npy of another dtype at the entry's name
        np.save(entry, np.zeros(images.shape, np.float32))
    elif how == "three dimensions":
        decode.write_entry(entry, np.array(images[:, 0]), meta)  # write_entry takes any uint8 array
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", ["empty", "header only", "rows cut", "no meta", "trailer cut", "bad magic",
                                 "meta not json", "fewer rows than kept", "plain npy", "three dimensions"])
def test_a_partial_or_damaged_entry_is_decoded_again_not_trusted(classes: Path, tmp_path: Path, monkeypatch, how):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    first = folder.load(classes, image_size=16)
    expected = np.array(first.images)
    (entry,) = cache_entries(cache)
    damage_entry(entry, how)
    calls = []
    real = decode._decode_all
    monkeypatch.setattr(decode, "_decode_all", lambda *args: calls.append(1) or real(*args))
    again = folder.load(classes, image_size=16)
    assert calls == [1], "a damaged entry was trusted"
    np.testing.assert_array_equal(again.images, expected)
    assert again.paths == first.paths
    images, meta = decode.read_entry(entry)  # rebuilt whole at the same name
    np.testing.assert_array_equal(images, expected)
    assert len(meta["kept"]) == len(images) == 5
    assert cache_entries(cache) == [entry]


def test_a_partial_file_left_by_another_process_is_never_read(classes: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    plain = folder.load(classes, image_size=16)
    (entry,) = cache_entries(cache)
    entry.unlink()
    stale = entry.with_name(f"{entry.stem}.999999.tmp.npy")  # a live writer's, or a killed one's
    stale.write_bytes(decode._npy_header((5, 1, 16, 16)) + bytes(100))
    data = folder.load(classes, image_size=16)
    np.testing.assert_array_equal(data.images, plain.images)
    assert entry.exists() and stale.exists()  # the other writer's file is left to it (pruned after an hour)


@pytest.mark.parametrize("change", ["added", "removed", "renamed", "touched"])
def test_any_change_to_the_set_is_another_key(classes: Path, tmp_path: Path, monkeypatch, change):
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    paths = sorted(classes.rglob("*.png"))
    key = decode._cache_key(paths, (16, 16))
    assert decode._cache_key(list(paths), (16, 16)) == key  # the same files, the same key
    if change == "added":
        paths.append(save(classes / "good" / "new.png", np.zeros((20, 20), np.uint8)))
    elif change == "removed":
        paths.pop()
    elif change == "renamed":
        paths[0] = paths[0].rename(paths[0].with_name("moved.png"))
    else:
        os.utime(paths[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    assert decode._cache_key(paths, (16, 16)) != key
    decode.load_images(paths, 16)
    assert len(cache_entries(tmp_path / "cache")) == 1  # the entry of the changed set; the first was never made
    monkeypatch.setattr(decode, "CACHE_VERSION", decode.CACHE_VERSION + 1)
    assert decode._cache_key(paths, (16, 16)) != key  # a new entry format is a new key


def test_pruning_takes_entries_of_the_former_format_and_their_partial_files(classes: Path, tmp_path: Path,
                                                                            monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    folder.load(classes, image_size=16)
    (entry,) = cache_entries(cache)
    old = cache / "images-0123456789abcdef0123.npz"  # CACHE_VERSION 3: never read again, only pruned
    np.savez(old, images=np.zeros((2, 1, 8, 8), np.uint8))
    os.utime(old, (time.time() - 100,) * 2)
    fresh_partial = cache / "images-x.42.tmp.npz"
    fresh_partial.write_bytes(b"being written")
    assert decode.prune_cache(cache, entry.stat().st_size + fresh_partial.stat().st_size) == [old]
    assert decode.prune_cache(cache, 0, keep=entry) == []  # a recent partial file is another writer's
    os.utime(fresh_partial, (time.time() - 7200,) * 2)
    assert decode.prune_cache(cache, 0, keep=entry) == [fresh_partial]
    assert cache_entries(cache) == [entry]


@pytest.mark.parametrize("size", [16, (20, 12), decode.Fit(16, 4)])
@pytest.mark.parametrize("kind", ["gray", "colour", "16-bit"])
def test_the_cache_gives_the_pixels_decoding_gives(tmp_path: Path, monkeypatch, size, kind):
    """Written (a miss), read back (a hit) and decoded without the cache: the same pixels, image by image the
    documented form of each file (read_image)."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(6):
        if kind == "16-bit":
            pixels = rng.integers(0, 65536, (18, 26), dtype=np.uint16)
        else:
            pixels = noise(rng, (18, 26, 3) if kind == "colour" and i % 2 else (18, 26))
        paths.append(save(tmp_path / "set" / f"{i}.png", pixels))
    (tmp_path / "set" / "3b.png").write_bytes(b"broken")  # skipped between readable ones
    paths = sorted(tmp_path.glob("set/*.png"))
    monkeypatch.setenv("STEELNB_CACHE", str(tmp_path / "cache"))
    written = decode.load_images(paths, size)
    read = decode.load_images(paths, size)
    monkeypatch.setenv("STEELNB_CACHE", "off")
    plain = decode.load_images(paths, size)
    assert isinstance(written[0], np.memmap) and isinstance(read[0], np.memmap)
    assert type(plain[0]) is np.ndarray
    for result in (written, read):
        np.testing.assert_array_equal(result[0], plain[0])
        assert result[1:] == plain[1:]
    shape = decode.resolve_shape(size, paths)
    channels = 3 if kind == "colour" else 1
    assert plain[0].shape == (6, channels, *shape) and len(plain[2]) == 1
    for row, index in zip(read[0], read[1], strict=True):
        image = decode.read_image(paths[index], shape)[0]
        np.testing.assert_array_equal(row, np.broadcast_to(image, row.shape))


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
