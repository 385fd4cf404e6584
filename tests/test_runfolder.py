"""The run-folder policy: a lock while a run writes, no two runs' files together, whole files only."""

from __future__ import annotations

import subprocess

import pytest
import torch

from steelnb.errors import SteelnbWarning
from steelnb.runfolder import (
    DISCARD,
    LOCK_NAME,
    MOVING,
    PREVIOUS,
    RunFolderError,
    atomic_path,
    check_output_file,
    claim_run_folder,
    read_state,
)

OUTPUTS = ("config.json", "checkpoint.pt", "model.pt", "report_files")


def claim(out, **options):
    return claim_run_folder(out, OUTPUTS, resume_file="checkpoint.pt", finished_file="model.pt", **options)


def test_atomic_path_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as partial:
        partial.write_text("half")
        raise RuntimeError("died while writing")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    with atomic_path(target) as partial:
        partial.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_claim_locks_while_it_lasts_and_leaves_only_the_runs_files(tmp_path):
    out = tmp_path / "a" / "run"
    with claim(out) as claimed:
        assert claimed == out and (out / LOCK_NAME).exists()
        with pytest.raises(RunFolderError, match="in use by another steelnb run"), claim(out):
            pass
        (out / "model.pt").write_text("done")
    assert sorted(p.name for p in out.iterdir()) == ["model.pt"]


def test_a_run_failing_before_it_can_be_resumed_leaves_the_folder_as_it_found_it(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError), claim(out):
        (out / "config.json").write_text("{}")
        raise ValueError("k > N")
    assert not out.exists()  # the claim created it: gone
    out.mkdir()
    with pytest.raises(KeyboardInterrupt), claim(out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt
    assert out.is_dir() and list(out.iterdir()) == []  # the user's (empty) folder stays


def test_a_run_failing_after_a_checkpoint_keeps_its_files_for_resume(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), claim(out):
        (out / "config.json").write_text("{}")
        (out / "checkpoint.pt").write_text("epoch 1")
        raise KeyboardInterrupt
    with pytest.raises(RunFolderError, match="an unfinished run; pass --resume"), claim(out):
        pass
    with claim(out, resume=True):
        (out / "model.pt").write_text("done")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json", "model.pt"]


def test_overwrite_replaces_the_earlier_run_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", "model.pt", "checkpoint.pt.partial"):
        (out / name).write_text("old")
    with pytest.raises(RunFolderError, match="a finished run; pass --overwrite"), claim(out):
        pass
    with claim(out, overwrite=True):
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, PREVIOUS]  # the earlier run aside
        (out / "model.pt").write_text("new")
    assert files(out) == {"model.pt": "new"}  # gone only once the new run finished
    (out / "mine.txt").write_text("the user's")
    with pytest.raises(RunFolderError, match=r"not a run's \(mine.txt\)"), claim(out, overwrite=True):
        pass
    assert (out / "mine.txt").exists()


def files(folder) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with its text."""
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def earlier_run(out):
    """A finished run in `out`, with a folder among its files; what it holds."""
    out.mkdir()
    for name in ("config.json", "model.pt", "report_files/a.png"):
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(f"old {name}")
    return files(out)


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_an_overwrite_run_that_fails_puts_the_earlier_run_back(tmp_path, failure):
    out = tmp_path / "run"
    before = earlier_run(out)
    with pytest.raises(failure), claim(out, overwrite=True):
        (out / "config.json").write_text("new")
        (out / "checkpoint.pt").write_text("new epoch 1")  # even with something to resume: the earlier run wins
        raise failure
    assert files(out) == before


def test_an_overwrite_run_killed_outright_is_undone_by_the_next_claim(tmp_path):
    out = tmp_path / "run"
    before = earlier_run(out)
    (out / PREVIOUS).mkdir()  # what kill -9 leaves: the earlier run aside, the new run's files half written
    for name in ("config.json", "model.pt", "report_files"):
        (out / name).rename(out / PREVIOUS / name)
    (out / "config.json").write_text("new")
    with pytest.raises(RunFolderError, match="a finished run"), claim(out):
        pass
    assert files(out) == before
    (out / MOVING).mkdir()  # killed while moving the earlier run aside: some files moved, some not
    (out / "model.pt").rename(out / MOVING / "model.pt")
    with pytest.raises(RunFolderError, match="a finished run"), claim(out):
        pass
    assert files(out) == before



def test_an_earlier_run_that_cannot_be_moved_aside_refuses_the_run_unchanged(tmp_path, immutable):
    out = tmp_path / "run"
    before = earlier_run(out)
    immutable(out / "report_files")  # neither renamed nor emptied
    with pytest.raises(RunFolderError, match=r"report_files cannot be moved aside .*nothing was changed"), \
            claim(out, overwrite=True):
        pass
    assert files(out) == before


def test_an_earlier_run_that_cannot_be_deleted_at_the_end_is_named_in_a_warning(tmp_path, immutable):
    out = tmp_path / "run"
    earlier_run(out)
    immutable(out / "report_files" / "a.png")  # the folder can be moved, its file not deleted
    with pytest.warns(SteelnbWarning, match=r"could not all be deleted .* delete it by hand"), \
            claim(out, overwrite=True):
        (out / "model.pt").write_text("new")
    (left,) = out.glob(DISCARD + "*")
    assert {k for k in files(out) if not k.startswith(DISCARD)} == {"model.pt"}
    subprocess.run(["chattr", "-i", left / "report_files" / "a.png"], check=True)
    with claim(out, overwrite=True):  # the next claim deletes what was left
        pass
    assert list(out.iterdir()) == []


def test_resume_needs_its_file(tmp_path):
    with pytest.raises(RunFolderError, match="nothing to resume"), claim(tmp_path / "run", resume=True):
        pass
    assert not (tmp_path / "run").exists()


def test_check_output_file(tmp_path):
    check_output_file(tmp_path / "new" / "deeper" / "p.csv", "--out")  # missing folders are fine
    with pytest.raises(RunFolderError, match="is a folder"):
        check_output_file(tmp_path, "--out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        check_output_file(tmp_path / "file" / "p.csv", "--out")


def test_read_state_names_a_damaged_or_foreign_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"a": 1, "b": 2}, path)
    assert read_state(path, ("a",), "do x", weights_only=True) == {"a": 1, "b": 2}
    with pytest.raises(RunFolderError, match=r"not a steelnb file of this kind \(it lacks \['c'\]\); do x"):
        read_state(path, ("a", "c"), "do x", weights_only=True)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(RunFolderError, match=f"{path} is damaged or not a steelnb file .*; do x"):
        read_state(path, ("a",), "do x", weights_only=True)


def test_the_refusal_names_overwrite_as_the_wrapper_spells_it(tmp_path, monkeypatch):
    """`make run` sets STEELNB_OVERWRITE_HINT=OVERWRITE=1: make takes OVERWRITE=1, not --overwrite."""
    out = tmp_path / "run"
    with claim(out) as folder:
        (folder / "model.pt").write_text("done")
    monkeypatch.setenv("STEELNB_OVERWRITE_HINT", "OVERWRITE=1")
    with pytest.raises(RunFolderError, match="a finished run; pass OVERWRITE=1 to replace it"), claim(out):
        pass
