"""The lab's image scores, computed once: arrays cached under the features' folder, keyed by what made them (issue 19).

The discriminator's benchmarks (`detect_discriminator.py`, `discriminator_paired.py`) and the decision's
(`decision_cutoffs.py`, `decision_rules.py`) score the same piles at the same seeds and settings; each scoring costs a
rescoring and a discriminator's training, or a package run. `cached` keeps the arrays a scoring returns in
`<folder>/scores/<key digest>.npz`. The key is the caller's fields (pile, images, seed, settings), the processor's
architecture, the threads and the versions of the libraries that compute (`environment`), and a digest of the code
(`code_digest`: every file of `steelnb` and the benchmarks in SCORING, as Python reads them): a change to any of these
computes again, a change to comments or docstrings does not. What the fields do not name is not in the key: a pile read
from disk by name (`decision_rules.pile_scores`) is keyed by its name and data root, not by its images. Fields must be
JSON as they are (ints, floats, strings, lists): a value of another type is refused, not turned into a string that
another value could share.

>>> import tempfile
>>> calls = []
>>> def compute():
...     calls.append(1)
...     return {"scores": np.arange(3.0)}
>>> with tempfile.TemporaryDirectory() as folder:
...     _ = cached(Path(folder), {"pile": "tiny", "seed": 0}, compute)
...     again = cached(Path(folder), {"pile": "tiny", "seed": 0}, compute)
>>> again["scores"].tolist(), len(calls)
([0.0, 1.0, 2.0], 1)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import platform
import zipfile
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import scipy
import sklearn
import timm
import torch

ROOT = Path(__file__).resolve().parents[1]
SCORING = ("detect_lab.py", "detect_rescore.py", "detect_aggregation.py", "detect_radius.py",
           "detect_discriminator.py", "decision_rules.py", "lab_piles.py")  # the benchmarks whose code shapes a score


def digest(*parts: bytes) -> str:
    """A short hex digest of `parts`, in order."""
    hashed = hashlib.blake2b(digest_size=16)
    for part in parts:
        hashed.update(part)
    return hashed.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of every file under steelnb/ and of SCORING's benchmarks: each one's path and syntax tree without its
    docstrings (comments are not in the tree)."""
    files = sorted((ROOT / "steelnb").rglob("*.py")) + [ROOT / "benchmarks" / name for name in SCORING]
    return digest(*(str(path.relative_to(ROOT)).encode() + b"\0" + _code(path.read_text()).encode() for path in files))


def _code(source: str) -> str:
    r"""The syntax tree of `source` without docstrings, as text.

    >>> _code("def f():\n    'Words.'\n    return 1  # more words\n") == _code("def f():\n    return 1\n")
    True
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def environment() -> dict:
    """What else shapes a score or a measured second: the processor's architecture, torch's threads, the libraries'
    versions."""
    return {"architecture": platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "timm": timm.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "sklearn": sklearn.__version__, "faiss": faiss.__version__}


def cached(folder: Path, key: dict, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays `compute` returns for `key`, read from `folder`/scores where a run with the same key, environment
    and code left them, else computed and written there (to a `.partial.npz` file renamed into place: a run cut short
    leaves at most that file). An entry that cannot be read is computed again."""
    fields = json.dumps({"key": key, "environment": environment(), "code": code_digest()}, sort_keys=True)
    path = folder / "scores" / f"{digest(fields.encode())}.npz"
    try:
        with np.load(path) as stored:
            return dict(stored)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        pass
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
    return arrays
