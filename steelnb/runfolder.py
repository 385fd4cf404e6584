"""The output folder of one run: locked while it writes, never holding two runs' files at once.

    with claim_run_folder(out_dir, outputs=RUN_FILES, overwrite=..., resume=...) as out:
        ...  # write the run's files into `out`, each through `atomic_path`

The policy (`steelnb train` follows it; any command that writes a run folder, such as a detector's, calls
the same function with its own `outputs`):
- **A lock while a run writes.** The run holds an exclusive OS lock on `<out_dir>/.steelnb.lock`; a second
  run into the same folder fails at once, naming the process that holds it. The OS drops the lock when the
  process ends, even by kill -9, so a dead run never blocks the next (POSIX systems: Linux, macOS).
- **A new run starts only in a new or empty folder.** A folder holding an earlier run is refused unless
  `overwrite=True`, which first deletes that run's files; `overwrite` never deletes a file that is not one of
  `outputs` (the folder is then refused: nothing of the user's is lost). An output may be a folder (a train
  run's `report_files/`): it is deleted whole.
- **`resume=True` continues the run in the folder** and needs its `resume_file` (checkpoint.pt).
- **A run that fails before it has anything to resume leaves the folder as it found it:** its files are
  deleted, and the folder too when the run created it. With a `resume_file` on disk, its files stay for
  `--resume`.
- Each file is written whole (`atomic_path`: written beside, then renamed), so none is ever half-written.
Every problem (a folder that is a file, not writable, locked, not empty) is a `RunFolderError` with a
one-line message saying what to do, raised before any work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import SteelnbError

LOCK_NAME = ".steelnb.lock"
PARTIAL = ".partial"
OVERWRITE_HINT = "STEELNB_OVERWRITE_HINT"  # how the caller spells --overwrite (the Makefile: OVERWRITE=1)


class RunFolderError(SteelnbError):
    """An output folder that cannot take this run; the message says why and what to do."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A path beside `path` to write to; it replaces `path` when the block ends without an error."""
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_state(path: Path, keys: Iterable[str], what_to_do: str, **load_options) -> dict:
    """The dict that torch.save wrote to `path`, holding `keys`; RunFolderError naming the file when it is
    damaged or not such a file (`what_to_do` ends the message). `load_options` go to torch.load."""
    import torch  # here, not at the top: claiming a folder needs no torch

    try:
        state = torch.load(path, **load_options)
    except Exception as error:  # a damaged file raises RuntimeError, UnpicklingError, EOFError, ... by its damage
        why = type(error).__name__
        raise RunFolderError(f"{path} is damaged or not a steelnb file ({why}); {what_to_do}") from None
    missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise RunFolderError(f"{path} is not a steelnb file of this kind (it lacks {missing}); {what_to_do}")
    return state


@contextlib.contextmanager
def claim_run_folder(out_dir: str | Path, outputs: Iterable[str], overwrite: bool = False, resume: bool = False,
                     resume_file: str | None = None, finished_file: str | None = None,
                     flag: str = "--out-dir") -> Iterator[Path]:
    """Lock `out_dir` for one run and check that it may write there (see the module docstring).

    `outputs`: the names of every file the run writes. `resume_file`: the one a run continues from (None: the
    run cannot be resumed); `finished_file`: the one whose presence means the run finished (for messages);
    `flag`: how the user named the folder (for messages). Yields `out_dir` as a Path.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> with claim_run_folder(out, ["result.txt"]) as folder:
    ...     _ = (folder / "result.txt").write_text("done")
    >>> with claim_run_folder(out, ["result.txt"]):  # a second run into the same folder
    ...     pass
    Traceback (most recent call last):
    ...
    steelnb.runfolder.RunFolderError: --out-dir .../run holds files of an earlier run; pass --overwrite to replace ...
    >>> with claim_run_folder(out, ["result.txt"], overwrite=True) as folder:
    ...     (folder / "result.txt").exists()  # the earlier run's files are gone
    False
    """
    out, outputs = Path(out_dir), set(outputs)
    if resume and (resume_file is None or not (out / resume_file).is_file()):
        raise RunFolderError(f"nothing to resume: {out / (resume_file or '')} does not exist")
    created = _make_folder(out, flag)
    try:
        with _locked(out, flag):
            if not resume:
                _make_room(out, outputs, overwrite, flag, _earlier_run(out, resume_file, finished_file))
            try:
                yield out
            except BaseException:
                if resume_file is None or not (out / resume_file).exists():
                    _delete(out, outputs)
                raise
    finally:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty: a run that failed before writing leaves no folder


def check_output_file(path: Path, flag: str) -> None:
    """RunFolderError, before any work, when the file `path` could not be written at the end: it is a folder,
    or the folder it would go in (or the nearest one that exists) is a file or not writable."""
    if path.is_dir():
        raise RunFolderError(f"{flag} {path} is a folder; give a file name, such as {path / 'predictions.csv'}")
    existing = next(p for p in (path.absolute().parent, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise RunFolderError(f"{flag} {path} cannot be written: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise RunFolderError(f"{flag} {path} cannot be written: {existing} is not writable ({error.strerror}); "
                             "choose another place") from None


def _make_folder(out: Path, flag: str) -> bool:
    """Create `out` (and its parents) if needed; whether it was created. RunFolderError when it cannot be."""
    if out.is_dir():
        return False
    if out.exists():
        raise RunFolderError(f"{flag} {out} is a file, not a folder; choose a folder")
    try:
        out.mkdir(parents=True)
    except OSError as error:
        raise RunFolderError(f"{flag} {out} cannot be created ({error.strerror}); choose a writable folder") from None
    return True


@contextlib.contextmanager
def _locked(out: Path, flag: str) -> Iterator[None]:
    """Hold the exclusive lock on `out/.steelnb.lock`; the lock file is removed on release."""
    path = out / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunFolderError(f"{flag} {out} is not writable ({error.strerror}); choose another folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(f"{flag} {out} is in use by another steelnb run ({holder}); wait for it to end "
                                 "or choose another folder") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed the file between our open and lock: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%H:%M:%S')}".encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a waiting run then creates a fresh lock file
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _earlier_run(out: Path, resume_file: str | None, finished_file: str | None) -> str:
    """What an earlier run's files in `out` amount to, in words, with what can be done about them."""
    overwrite = _overwrite_flag()
    if finished_file and (out / finished_file).exists():
        return f"a finished run; pass {overwrite} to replace it"
    if resume_file and (out / resume_file).exists():
        return f"an unfinished run; pass --resume to continue it or {overwrite} to replace it"
    return f"files of an earlier run; pass {overwrite} to replace them"


def _overwrite_flag() -> str:
    """--overwrite, as the command was given it: `$STEELNB_OVERWRITE_HINT` where a wrapper (make) set it."""
    return os.environ.get(OVERWRITE_HINT) or "--overwrite"


def _make_room(out: Path, outputs: set[str], overwrite: bool, flag: str, earlier: str) -> None:
    """Refuse a folder holding anything (but the lock); with `overwrite`, delete an earlier run's files first."""
    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
    if not present:
        return
    listed = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
    foreign = [name for name in present if name.removesuffix(PARTIAL) not in outputs]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise RunFolderError(f"{flag} {out} holds files that are not a run's ({shown}); choose a new or empty "
                             f"folder ({_overwrite_flag()} replaces only an earlier run's files)")
    if not overwrite:
        raise RunFolderError(f"{flag} {out} holds {earlier}, or choose another folder ({listed})")
    _delete(out, outputs)


def _delete(out: Path, outputs: set[str]) -> None:
    """Delete the run files `outputs` (and their partial copies) from `out`; an output that is a folder (such as
    report_files) goes with everything in it."""
    for name in outputs:
        for path in (out / name, out / (name + PARTIAL)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
