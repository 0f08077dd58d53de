"""Every YAML read of cl_bench goes through ``load_yaml``: PyYAML's safe loader,
also reading the numbers people write (``1e6``, ``1.0e6``, ``3e-4``) as floats
(YAML 1.1, which PyYAML implements, reads ``1e6`` as a string)."""

from __future__ import annotations

import re
from typing import Any

import yaml


class NumberSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2's float syntax (exponent without a dot or its sign)."""


NumberSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
                |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Parse YAML text safely (no tags that build objects); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=NumberSafeLoader)  # noqa: S506 - a SafeLoader subclass


def dotted_items(values: dict[str, Any], prefix: str = "") -> list[str]:
    """A nested mapping as ``a.b=value`` items (the ``--set`` form), nested keys dotted."""
    items = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            items += dotted_items(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}={value}")
    return items
