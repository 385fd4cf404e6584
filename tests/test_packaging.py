"""What the install files promise: one faiss per environment, torch as a range the installed one falls in."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name for r in requirements}


def test_faiss_is_an_extra_cpu_or_gpu_never_a_core_dependency():
    extras = PROJECT["optional-dependencies"]
    assert not any(name.startswith("faiss") for name in names(PROJECT["dependencies"]))
    assert names(extras["cpu"]) == {"faiss-cpu"} and names(extras["gpu"]) == {"faiss-gpu"}
    assert not any(name.startswith("faiss") for name in names(extras["dev"]))


def test_the_gpu_environment_installs_one_faiss_and_make_the_cpu_one():
    environment = (REPO / "environment.yml").read_text()
    lines = [line.split("#")[0].strip() for line in environment.splitlines()]
    assert "- -e .[dev,gpu]" in lines and not any("faiss-cpu" in line or "[cpu" in line for line in lines)
    assert not any(re.match(r"- faiss", line) for line in lines)  # no conda faiss beside pip's
    assert '-e ".[dev,cpu]"' in (REPO / "Makefile").read_text()  # this CPU machine, CI


def test_torch_is_a_range_holding_the_installed_version():
    pins = {Requirement(r).name: Requirement(r).specifier for r in PROJECT["dependencies"]}
    for name in ("torch", "torchvision"):
        assert "==" not in str(pins[name])
        assert pins[name].contains(metadata.version(name).split("+")[0])
