"""The lab's image scores, computed once: arrays cached under the features' folder, keyed by what made them (issue 19).

The discriminator's benchmarks (`detect_discriminator.py`, `discriminator_paired.py`) and the decision's
(`decision_cutoffs.py`) score the same piles at the same seeds and settings; each scoring costs a rescoring and a
discriminator's training. `cached` keeps the arrays a scoring returns in `<folder>/scores/<key digest>.npz`, the key
being the caller's fields (pile, images, seed, setting) and a digest of the code that scores (`code_digest`: every file
of `steelnb/detect` and the benchmarks in SCORING, as Python reads them), so that a change to the code of any of them
computes again, and a change to its comments or docstrings does not.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> calls = []
>>> def compute():
...     calls.append(1)
...     return {"scores": np.arange(3.0)}
>>> first = cached(folder, {"pile": "tiny", "seed": 0}, compute)
>>> again = cached(folder, {"pile": "tiny", "seed": 0}, compute)
>>> again["scores"].tolist(), len(calls)
([0.0, 1.0, 2.0], 1)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCORING = ("detect_lab.py", "detect_rescore.py", "detect_aggregation.py", "detect_radius.py",
           "detect_discriminator.py")  # the benchmarks whose code shapes a cached score


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of every file under steelnb/detect and of SCORING's benchmarks: each one's path and syntax tree
    without its docstrings (comments are not in the tree)."""
    files = sorted((ROOT / "steelnb" / "detect").rglob("*.py")) + [ROOT / "benchmarks" / name for name in SCORING]
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + _code(path.read_text()).encode())
    return digest.hexdigest()


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


def cached(folder: Path, key: dict, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays `compute` returns for `key` (JSON-able fields), read from `folder`/scores where a run with the
    same key and code left them, else computed and written there (atomically: a run cut short leaves no file)."""
    fields = json.dumps({**key, "code": code_digest()}, sort_keys=True, default=str)
    path = folder / "scores" / f"{hashlib.blake2b(fields.encode(), digest_size=16).hexdigest()}.npz"
    if path.exists():
        with np.load(path) as stored:
            return dict(stored)
    arrays = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
    return arrays
