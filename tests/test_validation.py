"""Config checking from type hints: strict types, ranges and choices, and the source named in the message."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated

import pytest

from steelnb import validation
from steelnb.errors import SteelnbError
from steelnb.method.config import TrainConfig
from steelnb.validation import Above, AtLeast, AtMost, ConfigError, Matches, OneOf


@dataclass
class Example:
    flag: bool = False
    count: Annotated[int, AtLeast(1)] = 1
    size: Annotated[int | None, AtLeast(1)] = None
    rate: Annotated[float, Above(0), AtMost(1)] = 0.5
    kind: Annotated[str, OneOf(("a", "b"))] = "a"
    device: Annotated[str, Matches(r"cpu|cuda(:\d+)?", "cpu or cuda[:N]")] = "cpu"
    options: dict | None = None

    def __post_init__(self) -> None:
        validation.check(self)


@pytest.mark.parametrize("name, value", [
    ("flag", "false"), ("flag", 0), ("flag", None),
    ("count", True), ("count", 2.0), ("count", "2"), ("count", None),
    ("size", 1.5), ("size", "none"),
    ("rate", "0.5"), ("rate", True), ("rate", float("nan")), ("rate", float("inf")),
    ("kind", 1), ("device", None), ("options", [1]),
])
def test_a_value_of_the_wrong_type_is_refused(name, value):
    with pytest.raises(ConfigError, match=f"^{name} must be ") as error:
        Example(**{name: value})
    assert error.value.field == name


@pytest.mark.parametrize("name, value, message", [
    ("count", 0, "count must be at least 1, got 0"),
    ("size", -3, "size must be at least 1, got -3"),
    ("rate", 0, "rate must be greater than 0, got 0"),
    ("rate", 1.5, "rate must be at most 1, got 1.5"),
    ("kind", "c", 'kind must be one of a, b, got "c"'),
    ("device", "cuda:x", 'device must be cpu or cuda[:N], got "cuda:x"'),
])
def test_a_value_out_of_range_is_refused(name, value, message):
    with pytest.raises(ConfigError) as error:
        Example(**{name: value})
    assert str(error.value) == message


def test_values_that_fit_are_kept():
    example = Example(flag=True, count=3, size=None, rate=1, kind="b", device="cuda:1", options={"x": 1})
    assert example.rate == 1 and example.device == "cuda:1"


def test_a_config_error_is_both_a_steelnb_error_and_a_value_error():
    assert issubclass(ConfigError, SteelnbError) and issubclass(ConfigError, ValueError)


def _wrong_type(kind: type):
    return "text" if kind is not str else 3


@pytest.mark.parametrize("name", [f.name for f in fields(TrainConfig)])
def test_every_train_config_field_is_checked(name):
    kind, _, _ = validation.specs(TrainConfig)[name]
    assert kind in (bool, int, float, str, dict), f"{name}: a type the checker does not know"
    with pytest.raises(ConfigError, match=f"^{name} must be "):
        TrainConfig(**{name: _wrong_type(kind)})


def test_from_dict_names_where_each_value_came_from():
    sources = {"epochs": "flag --epochs", "lr": "run/config.json"}
    with pytest.raises(ConfigError, match=r"^flag --epochs: epochs must be at least 1, got 0$"):
        TrainConfig.from_dict({"epochs": 0, "lr": 0.1}, sources)
    with pytest.raises(ConfigError, match=r"^run/config.json: lr must be greater than 0"):
        TrainConfig.from_dict({"epochs": 2, "lr": -1.0}, sources)
    with pytest.raises(ConfigError, match=r"^model.pt: unknown config keys \['gpu'\]$"):
        TrainConfig.from_dict({"gpu": True}, source="model.pt")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        TrainConfig.from_dict([("epochs", 2)])


@dataclass(frozen=True)
class Options(validation.Options):
    depth: Annotated[int, AtLeast(1)] = 2


def test_options_are_filled_checked_and_named():
    assert validation.options(Options, None, "x.tree") == Options()
    assert validation.options(Options, {"depth": 3}, "x.tree").depth == 3
    with pytest.raises(ConfigError, match=r"^x.tree: depth must be at least 1, got 0$") as error:
        validation.options(Options, {"depth": 0}, "x.tree")
    assert error.value.field == "x"
    with pytest.raises(ConfigError, match=r"^x.tree: unknown option\(s\) \['width'\]; known: depth$"):
        validation.options(Options, {"width": 1}, "x.tree")
    assert validation.options_by_name({"tree": Options, "bush": Options}, {"bush": {"depth": 5}}, "x") == {
        "tree": {"depth": 2}, "bush": {"depth": 5}}
    with pytest.raises(ConfigError, match=r"^x: \['vine'\] have no options here"):
        validation.options_by_name({"tree": Options}, {"vine": {}}, "x")
