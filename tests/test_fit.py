"""Decoding at `Fit` (the pile's own aspect, the longer side at most max_side, sides multiples), at (H, W), and
the decode cache's key for each (steelnb/data/decode.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steelnb.data import Fit, decode, folder, load_dataset
from steelnb.data.decode import CACHE_VERSION, load_images, resolve_shape


def save(path: Path, height: int, width: int, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), value, np.uint8)).save(path)
    return path


@pytest.fixture
def tall(tmp_path: Path) -> Path:
    """Three tall strips of slightly different sizes (median 300 x 100, H x W) and a file that is no image."""
    for i, (height, width) in enumerate([(290, 110), (300, 100), (310, 96)]):
        save(tmp_path / "tall" / f"{i}.png", height, width, value=40 * (i + 1))
    (tmp_path / "tall" / "broken.png").write_bytes(b"no image")
    return tmp_path / "tall"


@pytest.mark.parametrize("max_side", [32, 48, 64, 100, 112, 200, 500, 512, 1000])
@pytest.mark.parametrize("multiple", [16, 32])
@pytest.mark.parametrize("source", [(1260, 500), (256, 1600), (300, 300), (10, 10), (40, 3000)])
def test_fit_keeps_the_aspect_with_the_longer_side_at_most_max_side(tmp_path, max_side, multiple, source):
    path = save(tmp_path / "a.png", *source)
    height, width = resolve_shape(Fit(max_side, multiple), [path])
    assert height % multiple == 0 and width % multiple == 0
    assert max(height, width) <= max(max_side, multiple), "the longer side above max_side"
    factor = min(1.0, max_side / max(source))
    for got, side in zip((height, width), source, strict=True):
        ideal = side * factor
        # the nearest multiple of the scaled side, or the largest one max_side allows, or one multiple at least
        assert abs(got - ideal) <= multiple / 2 or got == max_side // multiple * multiple or got == multiple


def test_fit_takes_the_median_shape_of_the_pile_and_ignores_unreadable_files(tall):
    paths = sorted(tall.iterdir())
    assert resolve_shape(Fit(600, 4), paths) == (300, 100)  # the median source, not scaled: it fits
    assert resolve_shape(Fit(150, 10), paths) == (150, 50)  # halved, the aspect 3 : 1 kept


def test_fit_never_enlarges_beyond_one_multiple(tmp_path):
    assert resolve_shape(Fit(512, 32), [save(tmp_path / "tiny.png", 10, 10)]) == (32, 32)
    assert resolve_shape(Fit(512, 32), [save(tmp_path / "small.png", 100, 70)]) == (96, 64)


def test_a_folder_read_at_fit_keeps_its_aspect_and_records_the_shape(tall):
    data = folder.load(tall, image_size=Fit(150, 10))
    assert data.images.shape == (3, 1, 150, 50)
    assert data.meta["image_size"] == [150, 50]
    assert [p for p, _ in data.skipped] == ["broken.png"]


def test_an_height_width_size_is_read_as_given(tall):
    assert resolve_shape((40, 24), []) == (40, 24)
    data = load_dataset(str(tall), image_size=(40, 24))
    assert data.images.shape == (3, 1, 40, 24) and data.meta["image_size"] == [40, 24]
    assert (data.images[0] == 40).all()  # resized, not cropped or padded: the file's one grey level everywhere


def test_the_cache_key_of_a_square_size_is_what_it_was_before_sizes_had_two_sides(tall):
    """Square sizes keep the key they had when a size was one number: existing cache entries stay valid."""
    paths = sorted(tall.glob("[0-9].png"))
    stats = [p.stat() for p in paths]
    entries = [(str(p), s.st_size, s.st_mtime_ns, s.st_ino, s.st_ctime_ns) for p, s in zip(paths, stats, strict=True)]
    former = hashlib.sha1(json.dumps([CACHE_VERSION, 64, entries]).encode()).hexdigest()[:20]
    assert decode._cache_key(paths, (64, 64)) == former
    assert decode._cache_key(paths, (64, 32)) != former


def test_a_square_size_given_three_ways_shares_one_cache_entry(tall, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEELNB_CACHE", str(cache))
    decoded = []
    real = decode._decode_all
    monkeypatch.setattr(decode, "_decode_all", lambda *args: decoded.append(args[1]) or real(*args))
    paths = sorted(tall.glob("[0-9].png"))
    first = load_images(paths, 64)[0]
    for size in ((64, 64), Fit(64, 64)):  # Fit(64, 64): the 300 x 100 median becomes 64 x 64
        np.testing.assert_array_equal(load_images(paths, size)[0], first)
    assert decoded == [(64, 64)] and len(list(cache.glob("images-*.npz"))) == 1
    assert load_images(paths, Fit(128, 32))[0].shape == (3, 1, 128, 32)
    assert decoded == [(64, 64), (128, 32)] and len(list(cache.glob("images-*.npz"))) == 2
