"""Progress on stderr: one line per phase when stderr is not a terminal, tqdm's bar in one, nothing when quiet."""

import io
import re
import sys

import pytest

from steelnb import progress


@pytest.fixture(autouse=True)
def loud():
    progress.set_quiet(False)
    yield
    progress.set_quiet(False)


def test_one_line_per_phase_with_time_and_rate_when_not_a_terminal(capsys):
    assert list(progress.progress(range(5), "counting 5 things", unit="thing")) == [0, 1, 2, 3, 4]
    err = capsys.readouterr().err
    assert re.fullmatch(r"counting 5 things \.\.\. done in \d+(\.\d)? s \(\d+(\.\d+)? thing/s\)\n", err), err


def test_a_phase_says_it_failed_and_lets_the_error_through(capsys):
    with progress.phase("clustering"):
        pass
    with pytest.raises(KeyError), progress.phase("fitting"):
        raise KeyError("x")
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"clustering \.\.\. done in \d+\.\d s", lines[0])
    assert re.fullmatch(r"fitting \.\.\. failed after \d+\.\d s", lines[1])


def test_a_loop_left_early_says_how_far_it_got(capsys):
    for item in progress.progress(range(10), "reading", unit="file"):
        if item == 3:
            break
    assert "reading ... stopped after 3 file" in capsys.readouterr().err


def test_quiet_prints_nothing(capsys):
    progress.set_quiet(True)
    assert sum(progress.progress(range(4), "adding")) == 6
    with progress.phase("clustering"):
        pass
    assert capsys.readouterr().err == ""


def test_a_terminal_gets_a_bar_with_rate_and_eta(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress.progress(iter(range(3)), "decoding 3 images", total=3, unit="image")) == [0, 1, 2]
    bar = terminal.getvalue()
    assert "decoding 3 images" in bar and "3/3" in bar and "image/s" in bar and "<" in bar  # elapsed<remaining
