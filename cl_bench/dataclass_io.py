"""Typed dataclasses from plain dicts (YAML, JSON, weights files) and back,
rejecting unknown keys, wrong types and values out of range with one line
naming the key.

A field declares its rules with ``setting``: the allowed numbers (``Range``,
checked for the value, or each value of a list or dict), the allowed names
(``choices``, checked the same way; the command line's choice lists read them
with ``choices_of``), for dicts keyed by name, a function normalising each
key (raising ``CLBenchError`` for an unknown one), and one line of help (``describe_field``)."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Callable, Sequence

from cl_bench.errors import CLBenchError


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed numbers: finite, ``low <= x`` (``low < x`` when ``open_low``),
    ``x <= high``, and a multiple of ``multiple_of``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    multiple_of: int | None = None

    def allows(self, value: float) -> bool:
        return (math.isfinite(value)
                and (self.low is None or value > self.low or (value == self.low and not self.open_low))
                and (self.high is None or value <= self.high)
                and (self.multiple_of is None or value % self.multiple_of == 0))

    def __str__(self) -> str:
        low = "" if self.low is None else f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            low = f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"
        multiple = f"a multiple of {self.multiple_of}" if self.multiple_of else ""
        return ", ".join(part for part in (low, multiple) if part)


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, open_low=True)
PROBABILITY = Range(0, 1)


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            allowed: Range | None = None, choices: Sequence[str] | None = None,
            keys: Callable[[str, str], str] | None = None, help: str = "") -> Any:
    """A dataclass field with its rules and its one-line help (see the module docstring)."""
    if choices is not None:
        choices = tuple(choices)
        if default is not dataclasses.MISSING and default is not None and default not in choices:
            raise ValueError(f"default {default!r} is not one of its choices {choices}")
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"allowed": allowed, "choices": choices, "keys": keys, "help": help})


def describe_field(spec: dataclasses.Field) -> str:
    """``name = default (type, allowed values): help`` of a dataclass field, from its declaration."""
    default = spec.default if spec.default is not dataclasses.MISSING else (
        spec.default_factory() if spec.default_factory is not dataclasses.MISSING else "required")
    kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", str(spec.type))
    allowed, choices = spec.metadata.get("allowed"), spec.metadata.get("choices")
    rules = [str(kind), *([f"one of {' | '.join(choices)}"] if choices else []), *([str(allowed)] if allowed else [])]
    help_text = spec.metadata.get("help")
    shown = f"{default:g}" if isinstance(default, float) else repr(default)
    return f"{spec.name} = {shown} ({', '.join(rules)})" + (f": {help_text}" if help_text else "")


def lift(values: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``values`` with the mapping under ``key`` merged into its top level (``{key: {a: 1}, b: 2}`` gives
    ``{a: 1, b: 2}``); a key given both ways with different values is one line naming it."""
    inner = values.get(key)
    if not isinstance(inner, dict):
        return values
    outer = {k: v for k, v in values.items() if k != key}
    for name in sorted(set(inner) & set(outer)):
        if inner[name] != outer[name]:
            raise CLBenchError(f"{where}.{name}: set twice, as {key}.{name}: {inner[name]!r} and as {name}: "
                               f"{outer[name]!r}")
    return {**outer, **inner}


def choices_of(cls: type, name: str) -> tuple[str, ...]:
    """The names field ``name`` of dataclass ``cls`` allows (its ``setting(choices=...)``)."""
    choices = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("choices")
    if choices is None:
        raise TypeError(f"{cls.__name__}.{name} declares no choices")
    return choices


def check_choice(value: Any, choices: Sequence[str], where: str) -> Any:
    """``value`` when it is one of ``choices``, else one line naming the key, the value and the allowed names."""
    if value not in choices:
        raise CLBenchError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


def _check(value: Any, spec: dataclasses.Field, where: str) -> Any:
    keys, allowed, choices = (spec.metadata.get(rule) for rule in ("keys", "allowed", "choices"))
    if keys is not None:
        value = {keys(key, where): item for key, item in value.items()}
    if (allowed is not None or choices is not None) and value is not None:
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
        for key, item in items if items is not None else [(None, value)]:
            name = where if key is None else f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]"
            if choices is not None:
                check_choice(item, choices, name)
            if allowed is not None and not allowed.allows(item):
                raise CLBenchError(f"{name}: {item!r} is out of range (allowed: {allowed})")
    return value


def _convert(value: Any, kind: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise CLBenchError(f"{where}: expected a mapping")
        return from_dict(kind, value, where)
    if origin is typing.Union or type(kind).__name__ == "UnionType":
        if value is None and type(None) in args:
            return None
        return _convert(value, next(a for a in args if a is not type(None)), where)
    if origin is list:
        if not isinstance(value, list):
            raise CLBenchError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise CLBenchError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CLBenchError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise CLBenchError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    return cls(**{k: _check(_convert(v, hints[k], f"{where}.{k}"), fields[k], f"{where}.{k}")
                  for k, v in values.items()})


def to_dict(instance: Any) -> dict[str, Any]:
    """A dataclass (nested ones and dicts of them included) as plain dicts."""
    return dataclasses.asdict(instance)
