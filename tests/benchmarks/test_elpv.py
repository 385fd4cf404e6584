"""The lab's ELPV piles (benchmarks/elpv.py; held out until the fifteenth round): one pile a cell type, defect-free
cells whole, a seeded draw of certain defects at the pile's share, unsure cells left out, images copied unchanged."""

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import elpv  # benchmarks/ is not a package: its folder on the path


def mirror(tmp_path: Path, rows: list[tuple[str, float, str]]) -> Path:
    """A git repository laid out as elpv-dataset's, one small file an image; its git directory."""
    repo = tmp_path / "repo"
    images = repo / elpv.DATA / "images"
    images.mkdir(parents=True)
    for name, _, _ in rows:
        (images / name).write_bytes(name.encode())
    (repo / elpv.DATA / "labels.csv").write_text(
        "".join(f"images/{name}  {probability}  {kind}\n" for name, probability, kind in rows))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "cells"], check=True)
    return repo / ".git"


def test_each_cell_type_is_a_pile_at_the_defective_share(tmp_path):
    rows = ([(f"m{i:02d}.png", 0.0, "mono") for i in range(22)] + [(f"d{i}.png", 1.0, "mono") for i in range(5)]
            + [("u.png", 1 / 3, "mono"), ("v.png", 2 / 3, "mono")]
            + [(f"p{i:02d}.png", 0.0, "poly") for i in range(15)] + [(f"q{i}.png", 1.0, "poly") for i in range(4)])
    out = tmp_path / "piles"
    counts = elpv.build(mirror(tmp_path, rows), out)
    assert counts == {"mono/good": 22, "mono/defective": 3, "poly/good": 15, "poly/defective": 2}
    assert sorted(path.name for path in (out / "mono" / "good").iterdir()) == [f"m{i:02d}.png" for i in range(22)]
    drawn = sorted(path.name for path in (out / "mono" / "defective").iterdir())
    assert set(drawn) <= {f"d{i}.png" for i in range(5)}  # certain defects only: the unsure cells left out
    assert (out / "mono" / "defective" / drawn[0]).read_bytes() == drawn[0].encode()
    with pytest.raises(SystemExit, match="not empty"):  # a second build never mixes with the first
        elpv.build(mirror(tmp_path / "again", rows), out)


def test_the_docstring_examples_hold():
    assert doctest.testmod(elpv).failed == 0


def test_its_command_line_builds_into_the_folder_given(tmp_path, monkeypatch, capsys):
    rows = [(f"m{i:02d}.png", 0.0, "mono") for i in range(22)] + [(f"d{i}.png", 1.0, "mono") for i in range(5)]
    monkeypatch.setattr(sys, "argv", ["elpv.py", "--mirror", str(mirror(tmp_path, rows)), "--out", str(tmp_path / "o")])
    elpv.main()  # lab_piles.from_mirror: the command line every fetched pile's script shares
    assert "'mono/good': 22" in capsys.readouterr().out
    assert len(list((tmp_path / "o" / "mono" / "good").iterdir())) == 22
