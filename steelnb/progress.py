"""Progress of long work on stderr: a tqdm bar in a terminal, one line per phase otherwise, nothing when quiet.

Every long phase (decoding, feature extraction, an epoch's training, clustering, prediction) goes through
`progress` (work done step by step) or `phase` (one call that cannot report its steps, e.g. k-means):

>>> from steelnb import progress
>>> progress.set_quiet(True)  # what --quiet does
>>> sum(progress.progress(range(3), "adding 3 numbers", unit="number"))
3
>>> with progress.phase("clustering"):
...     pass

When stderr is not a terminal (a script, a log file, a notebook) each phase prints one line:
``decoding 1344 images ... done in 41 s (33 image/s)``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

QUIET = False  # set by --quiet (set_quiet); progress then prints nothing


def set_quiet(quiet: bool) -> None:
    """Turn every progress report off (True) or on (False)."""
    global QUIET
    QUIET = quiet


def _to_terminal() -> bool:
    return sys.stderr.isatty()


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def _rate(per_second: float) -> str:
    return f"{per_second:.0f}" if per_second >= 10 else f"{per_second:.2f}"


def progress(iterable: Iterable, desc: str, total: int | None = None, unit: str = "it") -> Iterator:
    """Yield `iterable`'s items while reporting how far it got: rate and ETA in a terminal, a line otherwise.

    `total`: the number of items, when `iterable` has no len(); `unit`: what one item is ("image", "step").
    """
    if QUIET:
        yield from iterable
    elif _to_terminal():
        yield from tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
    else:
        yield from _lines(iterable, desc, unit)


def _start(desc: str) -> float:
    sys.stderr.write(f"{desc} ...")
    sys.stderr.flush()
    return time.perf_counter()


def _end(text: str) -> None:
    sys.stderr.write(f" {text}\n")
    sys.stderr.flush()


def _lines(iterable: Iterable, desc: str, unit: str) -> Iterator:
    started, count, finished = _start(desc), 0, False
    try:
        for item in iterable:
            yield item
            count += 1
        finished = True
    finally:
        seconds = time.perf_counter() - started
        rate = f" ({_rate(count / seconds)} {unit}/s)" if count and seconds > 0 else ""
        _end(f"done in {_seconds(seconds)}{rate}" if finished
             else f"stopped after {count} {unit} ({_seconds(seconds)})")


@contextmanager
def phase(desc: str) -> Iterator[None]:
    """Report one step of work that cannot count its own progress: ``clustering ... done in 2.1 s``."""
    if QUIET:
        yield
        return
    started = _start(desc)
    try:
        yield
    except BaseException:
        _end(f"failed after {_seconds(time.perf_counter() - started)}")
        raise
    _end(f"done in {_seconds(time.perf_counter() - started)}")
