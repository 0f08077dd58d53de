"""Typed dataclasses from plain dicts (YAML, JSON, weights files) and back,
rejecting unknown keys and wrong types with one line naming the key."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from cl_bench.errors import CLBenchError


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
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise CLBenchError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    return cls(**{k: _convert(v, hints[k], f"{where}.{k}") for k, v in values.items()})


def to_dict(instance: Any) -> dict[str, Any]:
    """A dataclass (nested ones and dicts of them included) as plain dicts."""
    return dataclasses.asdict(instance)
