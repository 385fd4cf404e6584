"""Where a notebook's results go, and the thread cap."""

import pytest
import torch

from steelnb.study import notebook


def test_repo_root_is_found_from_a_subfolder(tmp_path):
    root = notebook.repo_root()
    assert (root / "pyproject.toml").is_file() and (root / "steelnb").is_dir()
    assert notebook.repo_root(root / "notebooks") == root
    assert notebook.repo_root(tmp_path) == root  # outside a checkout: the installed package's checkout


def test_results_path_defaults_under_the_repository(tmp_path):
    assert notebook.results_path(tmp_path / "x", "ci", "01_a") == tmp_path / "x"
    assert (tmp_path / "x").is_dir()
    default = notebook.results_path(None, "ci", "zz_test_results_path")
    try:
        assert default == notebook.repo_root() / "results" / "ci" / "zz_test_results_path"
    finally:
        default.rmdir()


def test_limit_threads_only_caps_when_asked_or_for_ci():
    before = torch.get_num_threads()
    try:
        assert notebook.limit_threads(None, "cpu") is None and torch.get_num_threads() == before
        assert notebook.limit_threads(None, "ci") == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            notebook.limit_threads(0, "ci")
    finally:
        torch.set_num_threads(before)
