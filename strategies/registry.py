"""The strategy registry (``--strategy NAME``): each strategy is the
multi-task template plus plugins, declared in one short module with its
options, plugins and registration.

Strategies compose: ``--strategy ewc+replay+lwf`` runs the parts' plugins in
the order written, with each part's options under ``strategy.options.<part>``.
A part appears once; ``naive`` and the reference schedules (``joint``,
``single_task``) compose with nothing; at most one part keeps a buffer of
earlier tasks' images (``replay``, ``der``, ``agem``): each samples its own
``per_task_per_step`` images of every earlier task per step, so two would
exceed the challenge's <= 10 images per task per step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from cl_bench.dataclass_io import from_dict
from cl_bench.errors import CLBenchError
from cl_bench.schedules import SEQUENTIAL, Schedule
from cl_bench.tasks import Task

SEPARATOR = "+"


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
    buffer: bool = False  # keeps images of earlier tasks and replays them every step
    composable: bool = True

    def options(self, values: dict[str, Any]) -> Any:
        return from_dict(self.options_type, values, f"strategy.options ({self.name})")

    def describe_options(self) -> str:
        values = dataclasses.asdict(self.options_type())
        return ", ".join(f"{k}={v}" for k, v in values.items()) or "no options"


STRATEGIES: dict[str, StrategySpec] = {}


def register(name: str, options_type: type, summary: str, schedule: Schedule = SEQUENTIAL, buffer: bool = False,
             composable: bool = True):
    """Register the decorated plugin builder ``(options, StrategyContext) -> plugins`` as strategy ``name``."""
    def decorate(plugins: Callable[[Any, StrategyContext], list]):
        STRATEGIES[name] = StrategySpec(name, summary, options_type, plugins, schedule, buffer,
                                        composable and schedule is SEQUENTIAL)
        return plugins

    return decorate


def register_alias(name: str, composition: str, summary: str) -> None:
    """Register ``name`` as another name for ``composition`` (same plugins, same options layout)."""
    STRATEGIES[name] = dataclasses.replace(compose(composition), name=name, summary=summary, composable=False)


def _known(name: str) -> StrategySpec:
    if name not in STRATEGIES:
        raise CLBenchError(f"unknown strategy '{name}' (known: {', '.join(sorted(STRATEGIES))}; "
                           f"compose with '{SEPARATOR}', e.g. ewc{SEPARATOR}replay)")
    return STRATEGIES[name]


def compose(name: str) -> StrategySpec:
    """The strategy ``a+b+...``: every part's plugins in the order written, options per part."""
    names = name.split(SEPARATOR)
    parts = [_known(part) for part in names]
    for part in parts:
        if not part.composable:
            raise CLBenchError(f"strategy '{name}': '{part.name}' does not compose (naive, the references joint "
                               f"and single_task, and names of compositions such as ewc_replay run alone)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CLBenchError(f"strategy '{name}': {', '.join(repeated)} appears more than once")
    buffers = [part.name for part in parts if part.buffer]
    if len(buffers) > 1:
        raise CLBenchError(f"strategy '{name}': {' and '.join(buffers)} each keep a replay buffer; use one "
                           f"(two would replay more than its per_task_per_step images per earlier task per step)")
    options_type = dataclasses.make_dataclass(
        "ComposedOptions", [(p.name, p.options_type, dataclasses.field(default_factory=p.options_type))
                            for p in parts])

    def plugins(options: Any, ctx: StrategyContext) -> list:
        built = [plugin for p in parts for plugin in p.plugins(getattr(options, p.name), ctx)]
        kinds = [type(plugin).__name__ for plugin in built]
        if len(set(kinds)) < len(kinds):  # checkpoints key plugin states by class name
            raise CLBenchError(f"strategy '{name}': its parts share a plugin class ({', '.join(kinds)})")
        return built

    summary = " + ".join(p.summary for p in parts)
    return StrategySpec(SEPARATOR.join(names), summary, options_type, plugins, SEQUENTIAL, bool(buffers))


def get_strategy(name: str) -> StrategySpec:
    """A registered strategy, or the composition ``a+b+...`` of registered ones."""
    return compose(name) if SEPARATOR in name else _known(name)


@dataclass
class NoOptions:
    """This strategy has no options."""
