"""The lab's score cache (benchmarks/score_cache.py): computed once a key and code, again when either changes."""

import doctest
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_discriminator  # benchmarks/ is not a package: its folder on the path
import score_cache
from detect_lab import cached_pile


def counted(calls: list) -> Callable[[], dict[str, np.ndarray]]:
    def compute() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"scores": np.full(3, float(len(calls)))}
    return compute


def test_a_key_is_computed_once_and_another_key_code_or_environment_computes_again(tmp_path, monkeypatch):
    calls = []
    first = score_cache.cached(tmp_path, {"pile": "a", "seed": 0}, counted(calls))
    assert score_cache.cached(tmp_path, {"seed": 0, "pile": "a"}, counted(calls))["scores"].tolist() == [1.0] * 3
    assert first["scores"].tolist() == [1.0] * 3 and len(calls) == 1
    assert score_cache.cached(tmp_path, {"pile": "a", "seed": 1}, counted(calls))["scores"].tolist() == [2.0] * 3
    monkeypatch.setattr(score_cache, "code_digest", lambda: "other code")
    assert score_cache.cached(tmp_path, {"pile": "a", "seed": 0}, counted(calls))["scores"].tolist() == [3.0] * 3
    monkeypatch.setattr(score_cache, "environment", lambda: {"threads": 99})
    assert score_cache.cached(tmp_path, {"pile": "a", "seed": 0}, counted(calls))["scores"].tolist() == [4.0] * 3
    names = [path.name for path in (tmp_path / "scores").iterdir()]
    assert len(names) == 4 and not any("partial" in name for name in names)


def test_an_entry_that_cannot_be_read_is_computed_again_and_a_field_that_is_no_json_is_refused(tmp_path):
    calls = []
    score_cache.cached(tmp_path, {"pile": "a"}, counted(calls))
    (entry,) = (tmp_path / "scores").iterdir()
    entry.write_bytes(b"")  # cut short by a crash of the machine
    assert score_cache.cached(tmp_path, {"pile": "a"}, counted(calls))["scores"].tolist() == [2.0] * 3
    assert score_cache.cached(tmp_path, {"pile": "a"}, counted(calls))["scores"].tolist() == [2.0] * 3
    with pytest.raises(TypeError):
        score_cache.cached(tmp_path, {"seed": np.int64(0)}, counted(calls))


def test_the_code_digest_follows_every_scoring_file_s_code_and_not_its_words(tmp_path, monkeypatch):
    (tmp_path / "steelnb" / "detect" / "scorers").mkdir(parents=True)
    (tmp_path / "benchmarks").mkdir()
    files = [tmp_path / "steelnb" / "detect" / "scorers" / "one.py",
             *(tmp_path / "benchmarks" / name for name in score_cache.SCORING)]
    for path in files:
        path.write_text("x = 1\n")
    monkeypatch.setattr(score_cache, "ROOT", tmp_path)
    digests = []
    for path in [None, *files]:
        if path is not None:
            path.write_text("x = 2\n")
        score_cache.code_digest.cache_clear()
        digests.append(score_cache.code_digest())
    files[0].write_text('"""Words."""\nx = 2  # more words\n')
    score_cache.code_digest.cache_clear()
    worded = score_cache.code_digest()
    score_cache.code_digest.cache_clear()
    assert len(set(digests)) == len(digests)  # each file's change is a new digest ...
    assert worded == digests[-1]  # ... and a docstring or a comment is none


def test_the_discriminator_s_scores_are_read_back_for_the_same_pile_part_and_seed(tmp_path, monkeypatch, tiny_pile):
    trained = []

    def recorded(*args, **kwargs):
        trained.append(1)
        return train(*args, **kwargs)

    train = detect_discriminator.discriminator_maps
    monkeypatch.setattr(detect_discriminator, "discriminator_maps", recorded)
    tiny_pile(tmp_path)
    first = detect_discriminator.pile_rows("tiny", tmp_path, [0], noises=[1.0], shares=[0.7])
    assert len(trained) == 1
    assert detect_discriminator.pile_rows("tiny", tmp_path, [0], noises=[1.0], shares=[0.7]) == first
    assert len(trained) == 1  # read back, seconds and all
    pile = cached_pile("tiny", tmp_path)
    clean = pile.part(pile.truth == 0)
    assert len(clean.truth) == 42 and clean.key() != pile.key()
    detect_discriminator.seed_scores(clean, 0, [1.0], [0.7])
    detect_discriminator.seed_scores(pile, 1, [1.0], [0.7])
    assert len(trained) == 3  # another part, another seed
    tiny_pile(tmp_path, seed=1)  # other features under the same name
    detect_discriminator.seed_scores(cached_pile("tiny", tmp_path), 0, [1.0], [0.7])
    assert len(trained) == 4


def test_a_part_is_named_by_its_images_in_the_cached_pile_not_in_the_pile_it_was_cut_from(tmp_path, tiny_pile):
    tiny_pile(tmp_path)
    pile = cached_pile("tiny", tmp_path)
    odd = pile.part(np.arange(48) % 2 == 1)  # images 1, 3, 5, ...
    first_of_odd, first_two = odd.part(np.arange(24) < 2), pile.part(np.arange(48) < 2)  # images 1, 3 and 0, 1
    assert first_of_odd.positions.tolist() == [1, 3] and first_two.positions.tolist() == [0, 1]
    assert first_of_odd.key() != first_two.key()
    assert first_of_odd.key() == pile.part(np.isin(np.arange(48), [1, 3])).key()
    assert torch.equal(first_of_odd.features, pile.features[[1, 3]])


def test_the_docstring_example_holds():
    assert doctest.testmod(score_cache).failed == 0
