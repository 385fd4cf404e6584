"""Shared by the study tests: an empty data root, one thread for tiny runs."""

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture
def no_real_data(tmp_path, monkeypatch):
    """$STEELNB_DATA holds nothing."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("STEELNB_DATA", str(tmp_path / "empty"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny runs on shared cores: one torch / BLAS thread (several spin for seconds), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)
