"""Shared by the study tests: an empty data root, one thread for tiny runs."""

import pytest

from tests.conftest import single_thread


@pytest.fixture
def no_real_data(tmp_path, monkeypatch):
    """$STEELNB_DATA holds nothing."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("STEELNB_DATA", str(tmp_path / "empty"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield
