"""Check a config dataclass against its own type hints, and name the field and the source at fault.

A field's annotation is its type (`int`, `float`, `str`, `bool`, `dict`, `X | None`); `Annotated[type, rule]`
adds a rule, any callable that takes the value and returns what is wrong with it ("must be ...") or None:

    epochs: Annotated[int, AtLeast(1)] = 10
    lr: Annotated[float, Above(0)] = 1e-3
    optimizer: Annotated[str, OneOf(("adam", "adamw"))] = "adam"

Types are strict, as a JSON file can get them wrong: a bool is true / false (never "false" or 0), an int is
an integer (never 2.0, "2" or true), a float is a finite number (an integer is accepted), a str is text.
`check(instance)` raises `ConfigError` for the first field that breaks its type or rule;
`with_source(error, sources)` prefixes the message with where the value came from (a file, a flag).
A `Help("...")` marker beside the rules says what the field means, in one line with its unit: the one source of
its flag's --help text, which `field_help` completes with the allowed values the rules state.

A component (a clusterer, an optimiser) keeps its settings in an `Options` dataclass, checked the same way;
`options` builds one from a dict, `options_by_name` every component's of a registry, as a config records them:

>>> @dataclass(frozen=True)
... class FaissLike(Options):
...     niter: int = 50
>>> options_by_name({"faiss": FaissLike}, {"faiss": {"niter": 20}}, "clusterer_options")
{'faiss': {'niter': 20}}
>>> options(FaissLike, {"niter": "many"}, "clusterer_options.faiss")
Traceback (most recent call last):
...
steelnb.validation.ConfigError: clusterer_options.faiss: niter must be an integer, got "many" (text)
"""

from __future__ import annotations

import functools
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from .errors import SteelnbError


class ConfigError(SteelnbError, ValueError):
    """A config value of the wrong type or out of range; `field` names it (None: the whole config)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AtLeast:
    """value >= low."""

    low: float

    def __call__(self, value) -> str | None:
        return None if value >= self.low else f"must be at least {self.low}"

    @property
    def words(self) -> str:
        return f">= {self.low:g}"


@dataclass(frozen=True)
class Above:
    """value > low."""

    low: float

    def __call__(self, value) -> str | None:
        return None if value > self.low else f"must be greater than {self.low}"

    @property
    def words(self) -> str:
        return f"> {self.low:g}"


@dataclass(frozen=True)
class AtMost:
    """value <= high."""

    high: float

    def __call__(self, value) -> str | None:
        return None if value <= self.high else f"must be at most {self.high}"

    @property
    def words(self) -> str:
        return f"<= {self.high:g}"


@dataclass(frozen=True)
class Below:
    """value < high."""

    high: float

    def __call__(self, value) -> str | None:
        return None if value < self.high else f"must be below {self.high}"

    @property
    def words(self) -> str:
        return f"< {self.high:g}"


@dataclass(frozen=True)
class OneOf:
    """value in choices."""

    choices: tuple[str, ...]

    def __call__(self, value) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(self.choices)}"

    @property
    def words(self) -> str:
        return " | ".join(self.choices)


@dataclass(frozen=True)
class Matches:
    """The whole value matches `pattern`; `meaning` says in words what that allows."""

    pattern: str
    meaning: str

    def __call__(self, value) -> str | None:
        return None if re.fullmatch(self.pattern, value) else f"must be {self.meaning}"

    @property
    def words(self) -> str:
        return self.meaning


@dataclass(frozen=True)
class Help:
    """What a field means, in one line with its unit (not a rule: `field_spec` sets it apart)."""

    text: str


NonEmpty = Matches(r"(?s).+", "non-empty text")
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "text", dict: "an object"}


def _shown(value, with_kind: bool = False) -> str:
    """`value` as a JSON file writes it (so "false" and false read differently), with its kind if asked."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    if not with_kind:
        return text
    kind = {bool: "true/false", str: "text", int: "an integer", float: "a number", type(None): "null"}
    return f"{text} ({kind.get(type(value), type(value).__name__)})"


def _fits(value, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, kind)


def field_spec(hint) -> tuple[type, bool, tuple]:
    """(base type, None allowed, rules) of a type hint such as `Annotated[int | None, AtLeast(1)]`."""
    rules: tuple = ()
    if typing.get_origin(hint) is typing.Annotated:
        hint, *extra = typing.get_args(hint)
        rules = tuple(rule for rule in extra if not isinstance(rule, Help))
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(members) < len(typing.get_args(hint)), members[0]
    return typing.get_origin(hint) or hint, optional, rules


@functools.cache
def specs(cls: type) -> dict[str, tuple[type, bool, tuple]]:
    """`field_spec` of every field of the dataclass `cls`."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: field_spec(hints[f.name]) for f in fields(cls)}


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """The one-line help of every field of the dataclass `cls` with a `Help` marker, followed by the values its
    rules allow ("one of ...", ">= 1") where they state them.

    >>> @dataclass
    ... class Run:
    ...     epochs: typing.Annotated[int, AtLeast(1), Help("passes over the data")] = 10
    >>> field_help(Run)
    {'epochs': 'passes over the data (>= 1)'}
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for name, (_, optional, rules) in specs(cls).items():
        marks = [m for m in typing.get_args(hints[name])[1:] if isinstance(m, Help)]
        if not marks:
            continue
        words = [rule.words for rule in rules if hasattr(rule, "words") and rule != NonEmpty]
        allowed = ", ".join(words + (["none"] if optional else []))
        out[name] = marks[0].text + (f" ({allowed})" if words else "")
    return out


def check(instance) -> None:
    """ConfigError naming the first field of the dataclass `instance` whose value breaks its type or rule."""
    for name, (kind, optional, rules) in specs(type(instance)).items():
        value = getattr(instance, name)
        if value is None and optional:
            continue
        if not _fits(value, kind):
            allowed = _TYPE_WORDS.get(kind, kind.__name__) + (" or null" if optional else "")
            raise ConfigError(f"{name} must be {allowed}, got {_shown(value, with_kind=True)}", name)
        for rule in rules:
            problem = rule(value)
            if problem:
                raise ConfigError(f"{name} {problem}, got {_shown(value)}", name)


def from_dict(cls: type, values: dict, sources: dict[str, str] | None = None, source: str = "config"):
    """An instance of the config dataclass `cls` from `values`; an error names the field and where its value
    came from: `sources[field]`, else `source` (e.g. the --config file). Unknown keys are errors too."""
    sources = sources or {}
    if not isinstance(values, dict):
        kind = type(values).__name__
        raise ConfigError(f"{source}: a config must be a JSON object of {cls.__name__} fields, got {kind}")
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        where = sorted({sources.get(k, source) for k in unknown})
        raise ConfigError(f"{', '.join(where)}: unknown config keys {sorted(unknown)}")
    try:
        return cls(**values)
    except ConfigError as error:
        raise with_source(error, sources, source) from None


def with_source(error: ConfigError, sources: dict[str, str], default: str = "config") -> ConfigError:
    """`error` with its message prefixed by where its field's value came from."""
    return ConfigError(f"{sources.get(error.field, default)}: {error}", error.field)


@dataclass(frozen=True)
class Options:
    """The base of a component's options dataclass (frozen): its fields are checked on creation, as a config's."""

    def __post_init__(self) -> None:
        check(self)


def options(cls: type, values, where: str, field: str | None = None):
    """An instance of the options dataclass `cls` from the mapping `values` (missing keys take their defaults; None:
    all defaults; an instance of `cls` is kept). ConfigError naming `where` (e.g. "clusterer_options.faiss") for an
    unknown key or a bad value; its `field` is `field`, by default the first part of `where`."""
    field = field or where.split(".")[0]
    if values is None or isinstance(values, cls):
        return cls() if values is None else values
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be an object, got {_shown(values, with_kind=True)}", field)
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known: {', '.join(known) or 'none'}", field)
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}", field) from None


def options_by_name(table: Mapping[str, type], values: Mapping, field: str) -> dict[str, dict]:
    """Every component of `table` (name -> options dataclass) with its options from `values` (name -> options; a
    component left out takes its defaults), as plain dicts: what a config records. ConfigError naming `field`
    for a name not in `table`, an unknown option or a bad value."""
    unknown = sorted(set(values) - set(table))
    if unknown:
        raise ConfigError(f"{field}: {unknown} have no options here; those that do: {', '.join(table)}", field)
    return {name: asdict(options(cls, values.get(name), f"{field}.{name}", field)) for name, cls in table.items()}
