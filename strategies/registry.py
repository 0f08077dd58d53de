"""The strategy registry (``--strategy NAME``): each strategy is the
multi-task template plus plugins, declared in one short module with its
options, plugins and registration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from cl_bench.dataclass_io import from_dict
from cl_bench.errors import CLBenchError
from cl_bench.schedules import SEQUENTIAL, Schedule
from cl_bench.tasks import Task


@dataclass(frozen=True)
class StrategyContext:
    """What plugin builders may need."""

    tasks: dict[str, Task]
    seed: int


@dataclass(frozen=True)
class StrategySpec:
    name: str
    summary: str
    options_type: type
    plugins: Callable[[Any, StrategyContext], list]
    schedule: Schedule = SEQUENTIAL

    def options(self, values: dict[str, Any]) -> Any:
        return from_dict(self.options_type, values, f"strategy.options ({self.name})")

    def describe_options(self) -> str:
        values = dataclasses.asdict(self.options_type())
        return ", ".join(f"{k}={v}" for k, v in values.items()) or "no options"


STRATEGIES: dict[str, StrategySpec] = {}


def register(name: str, options_type: type, summary: str, schedule: Schedule = SEQUENTIAL):
    """Register the decorated plugin builder ``(options, StrategyContext) -> plugins`` as strategy ``name``."""
    def decorate(plugins: Callable[[Any, StrategyContext], list]):
        STRATEGIES[name] = StrategySpec(name, summary, options_type, plugins, schedule)
        return plugins

    return decorate


def get_strategy(name: str) -> StrategySpec:
    if name not in STRATEGIES:
        raise CLBenchError(f"unknown strategy '{name}' (known: {', '.join(sorted(STRATEGIES))})")
    return STRATEGIES[name]


@dataclass
class NoOptions:
    """This strategy has no options."""
