"""The output folder of one run: locked while it writes, never holding two runs' files at once.

    with claim_run_folder(out_dir, outputs=RUN_FILES, overwrite=..., resume=...) as out:
        ...  # write the run's files into `out`, each through `atomic_path`

The policy (`steelnb train` follows it; any command that writes a run folder, such as a detector's, calls
the same function with its own `outputs`):
- **A lock while a run writes.** The run holds an exclusive OS lock on `<out_dir>/.steelnb.lock`; a second
  run into the same folder fails at once, naming the process that holds it. The OS drops the lock when the
  process ends, even by kill -9, so a dead run never blocks the next (POSIX systems: Linux, macOS).
- **A new run starts only in a new or empty folder.** A folder holding an earlier run is refused unless
  `overwrite=True`; `overwrite` never touches a file that is not one of `outputs` (the folder is then refused:
  nothing of the user's is lost). An output may be a folder (a train run's `report_files/`).
- **`overwrite` never loses the earlier run.** Its files are moved aside into `<out_dir>/.steelnb.previous`
  (renamed, not copied) and deleted only when the new run has finished; a run that fails or is interrupted
  puts them back as they were, and one killed outright (kill -9) has them put back by the next run into the
  folder. A file that cannot be moved aside refuses the run with nothing changed; one that cannot be deleted
  at the end is left in a hidden `.steelnb.discard-*` folder with a warning.
- **`resume=True` continues the run in the folder** and needs its `resume_file` (checkpoint.pt).
- **A run that fails before it has anything to resume leaves the folder as it found it:** its files are
  deleted, and the folder too when the run created it. With a `resume_file` on disk, its files stay for
  `--resume` (an `overwrite` run's excepted: the earlier run is put back instead).
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
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import SteelnbError, SteelnbWarning

LOCK_NAME = ".steelnb.lock"
PARTIAL = ".partial"
OVERWRITE_HINT = "STEELNB_OVERWRITE_HINT"  # how the caller spells --overwrite (the Makefile: OVERWRITE=1)
OWN_PREFIX = ".steelnb."  # steelnb's own hidden files in a run folder, never a run's or the user's
PREVIOUS = ".steelnb.previous"  # the earlier run's files while an `overwrite` run replaces them
MOVING = ".steelnb.moving"  # the same while they are moved aside or back
DISCARD = ".steelnb.discard"  # the replaced run's files being deleted


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
    ...     (folder / "result.txt").exists()  # the earlier run's files are moved aside
    False
    """
    out, outputs = Path(out_dir), set(outputs)
    if resume and (resume_file is None or not (out / resume_file).is_file()):
        raise RunFolderError(f"nothing to resume: {out / (resume_file or '')} does not exist")
    created = _make_folder(out, flag)
    try:
        with _locked(out, flag):
            _recover(out, outputs)
            aside = None if resume else _make_room(out, outputs, overwrite, flag,
                                                   _earlier_run(out, resume_file, finished_file))
            try:
                yield out
            except BaseException:
                if aside is not None:
                    _put_back(out, outputs)
                elif resume_file is None or not (out / resume_file).exists():
                    _delete(out, outputs)
                raise
            if aside is not None:
                _discard(out, aside)
    finally:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty: a run that failed before writing leaves no folder


def check_output_file(path: Path, flag: str, overwrite: bool = False) -> None:
    """RunFolderError, before any work, when the file `path` could not be written at the end: it is a folder,
    or the folder it would go in (or the nearest one that exists) is a file or not writable; or it exists and
    `overwrite` is not given (no file is replaced unasked)."""
    if path.is_dir():
        raise RunFolderError(f"{flag} {path} is a folder; give a file name, such as {path / 'predictions.csv'}")
    if path.exists() and not overwrite:
        raise RunFolderError(f"{flag}: {path} exists; pass --overwrite to replace it, or choose another name")
    existing = next(p for p in (path.absolute().parent, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise RunFolderError(f"{flag} {path} cannot be written: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise RunFolderError(f"{flag} {path} cannot be written: {existing} is not writable ({error.strerror}); "
                             "choose another place") from None


def check_outside(out: str | Path, pile: str | Path, flag: str = "--out-dir") -> None:
    """RunFolderError, before anything is created, when the run folder `out` would lie inside the image folder
    `pile` (its files would be read as images by the next run on the pile)."""
    real_out, real_pile = Path(os.path.realpath(out)), Path(os.path.realpath(pile))
    if real_out.is_relative_to(real_pile):
        raise RunFolderError(f"{flag} {out} lies inside the pile {pile}: a run folder there would be mixed into the "
                             "pile; choose a folder outside it")


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


def _make_room(out: Path, outputs: set[str], overwrite: bool, flag: str, earlier: str) -> Path | None:
    """Refuse a folder holding anything (but steelnb's own hidden files); with `overwrite`, move an earlier run's
    files aside, into the folder returned (None: there were none)."""
    present = sorted(p.name for p in out.iterdir() if not _own(p.name))
    if not present:
        return None
    listed = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
    foreign = [name for name in present if name.removesuffix(PARTIAL) not in outputs]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise RunFolderError(f"{flag} {out} holds files that are not a run's ({shown}); choose a new or empty "
                             f"folder ({_overwrite_flag()} replaces only an earlier run's files)")
    if not overwrite:
        raise RunFolderError(f"{flag} {out} holds {earlier}, or choose another folder ({listed})")
    return _move_aside(out, present, flag)


def _own(name: str) -> bool:
    """Whether `name` is one of steelnb's own hidden files in a run folder (the lock, the earlier run aside)."""
    return name == LOCK_NAME or name.startswith(OWN_PREFIX)


def _move_aside(out: Path, names: list[str], flag: str) -> Path:
    """Move the earlier run's `names` into `out/PREVIOUS` (through MOVING, renamed when every file is in it: a
    run killed meanwhile leaves files that `_recover` can tell apart). RunFolderError, with every file put back,
    when one cannot be moved."""
    moving = out / MOVING
    moving.mkdir()
    try:
        for name in names:
            try:
                os.rename(out / name, moving / name)
            except OSError as error:
                raise RunFolderError(f"{flag} {out}: the earlier run's {name} cannot be moved aside ({error.strerror});"
                                     " nothing was changed; make it writable or choose another folder") from None
    except BaseException:
        _return(moving, out)
        raise
    os.rename(moving, out / PREVIOUS)
    return out / PREVIOUS


def _return(aside: Path, out: Path) -> None:
    """Move every file of `aside` back into `out` and remove `aside` (the earlier run, as it was)."""
    for path in aside.iterdir():
        os.rename(path, out / path.name)
    aside.rmdir()


def _put_back(out: Path, outputs: set[str]) -> None:
    """Undo an `overwrite` run that did not finish: delete its files and return the earlier run's. PREVIOUS is
    renamed to MOVING first, so that a run killed while returning them is told from one killed before."""
    _delete(out, outputs)
    if (out / PREVIOUS).is_dir():
        os.rename(out / PREVIOUS, out / MOVING)
        _return(out / MOVING, out)


def _recover(out: Path, outputs: set[str]) -> None:
    """Put back an earlier run that an `overwrite` run killed outright (kill -9) left aside, and delete what a
    finished one could not."""
    if (out / MOVING).is_dir():  # killed while moving aside (or back): every run file in `out` is the earlier run's
        _return(out / MOVING, out)
    elif (out / PREVIOUS).is_dir():  # killed while running: the run files in `out` are its own
        _put_back(out, outputs)
    for left in out.glob(DISCARD + "*"):
        with contextlib.suppress(OSError):
            shutil.rmtree(left)


def _discard(out: Path, aside: Path) -> None:
    """Delete the earlier run's files once the new run has finished (renamed first, so none is ever put back);
    a warning naming the folder left when they cannot all be deleted."""
    doomed = out / f"{DISCARD}-{os.getpid()}-{time.time_ns()}"
    os.rename(aside, doomed)
    try:
        shutil.rmtree(doomed)
    except OSError as error:
        warnings.warn(f"the replaced run's files could not all be deleted ({error.strerror}: {error.filename}); "
                      f"they are in {doomed}: delete it by hand", SteelnbWarning, stacklevel=2)


def _delete(out: Path, outputs: set[str]) -> None:
    """Delete the run files `outputs` (and their partial copies) from `out`; an output that is a folder (such as
    report_files) goes with everything in it."""
    for name in outputs:
        for path in (out / name, out / (name + PARTIAL)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
