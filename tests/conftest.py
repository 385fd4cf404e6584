"""Shared fixtures: a private decode cache for the whole run, and the real data sets when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
