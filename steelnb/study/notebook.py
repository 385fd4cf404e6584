"""What every experiment notebook does first: where its results go, and the thread cap for small runs.

- `repo_root`, `results_path`: `results/<profile>/<notebook>` under the repository, whatever the cwd.
- `limit_threads`: one BLAS / OpenMP / torch thread for the ci profile (tiny arrays on shared cores).
"""

from __future__ import annotations

from pathlib import Path


def repo_root(start: str | Path | None = None) -> Path:
    """The repository: the first folder at or above `start` (default: cwd) holding pyproject.toml and
    steelnb/; else the folder above the installed package when it is a checkout; else `start`."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "steelnb" / "__init__.py").is_file():
            return folder
    package_parent = Path(__file__).resolve().parents[2]  # steelnb/study/notebook.py -> the checkout
    if (package_parent / "pyproject.toml").is_file():
        return package_parent
    return start


def results_path(results_dir: str | Path | None, profile: str, name: str) -> Path:
    """`results_dir`, or `<repo>/results/<profile>/<name>`; created."""
    out = Path(results_dir) if results_dir else repo_root() / "results" / profile / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def limit_threads(threads: int | None, profile: str) -> int | None:
    """Cap torch, BLAS and OpenMP (sklearn, faiss) at `threads`; None: 1 for the ci profile, else no cap.

    On a loaded 2-core machine tiny k-means / PCA calls spend seconds in spinning OpenMP / BLAS threads
    (measured: 2.3 s -> 0.02 s for PCA of 48 x 512 features); call this after importing steelnb.
    Returns the cap applied (None: libraries' defaults kept).
    """
    if threads is None:
        threads = 1 if profile == "ci" else None
    if threads is None:
        return None
    if threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads!r}")
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    faiss.omp_set_num_threads(threads)
    return threads
