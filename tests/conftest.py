"""Shared fixtures: a private decode cache for the whole run, the real data sets when present, a training cut short;
`single_thread` for the packages of tiny runs; `immutable` (chattr +i) for files that cannot be deleted."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Tiny runs on shared cores: one torch / BLAS thread (several spin for seconds), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point STEELNB_CACHE at a fresh folder, so tests neither read nor fill ~/.cache/steelnb."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("steelnb-cache")
        patch.setenv("STEELNB_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets: $STEELNB_DATA, else ../shared/datasets next to the repository; skip when absent."""
    root = Path(os.environ.get("STEELNB_DATA") or REPO.parent / "shared" / "datasets").expanduser()
    if not root.is_dir():
        pytest.skip(f"real data sets not found at {root} (set STEELNB_DATA)")
    return root


@pytest.fixture
def interrupt_training(monkeypatch):
    """interrupt_training(k): training stops as epoch k starts (KeyboardInterrupt, as a user's Ctrl-C), after epoch
    k - 1's checkpoint; interrupt_training(None): it runs through again."""
    from steelnb.method.train import Trainer

    original = Trainer._run_epoch

    def cut(at: int | None) -> None:
        def run_epoch(self, epoch):
            if epoch == at:
                raise KeyboardInterrupt
            original(self, epoch)

        monkeypatch.setattr(Trainer, "_run_epoch", original if at is None else run_epoch)

    return cut


@pytest.fixture
def immutable(tmp_path: Path):
    """chattr +i on paths under tmp_path, or skip where that cannot be made. Undone at the end over all of tmp_path:
    the code under test may have moved a marked file (a run's discard folder), and pytest cannot delete it after."""

    def make(path: Path) -> None:
        assert path.is_relative_to(tmp_path), f"{path} is outside the test's folder"
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", path], capture_output=True).returncode:
            pytest.skip("chattr +i is not available here")

    yield make
    subprocess.run(["chattr", "-R", "-i", tmp_path], capture_output=True, check=False)
