"""The run-folder policy: a lock while a run writes, no two runs' files together, whole files only."""

from __future__ import annotations

import pytest
import torch

from steelnb.runfolder import LOCK_NAME, RunFolderError, atomic_path, check_output_file, claim_run_folder, read_state

OUTPUTS = ("config.json", "checkpoint.pt", "model.pt")


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


def test_overwrite_deletes_the_earlier_run_and_nothing_else(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("config.json", "model.pt", "checkpoint.pt.partial"):
        (out / name).write_text("old")
    with pytest.raises(RunFolderError, match="a finished run; pass --overwrite"), claim(out):
        pass
    with claim(out, overwrite=True):
        assert list(out.iterdir()) == [out / LOCK_NAME]
    (out / "mine.txt").write_text("the user's")
    with pytest.raises(RunFolderError, match=r"not a run's \(mine.txt\)"), claim(out, overwrite=True):
        pass
    assert (out / "mine.txt").exists()


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
