"""The strategy registry (``--strategy NAME``): each strategy is the
multi-task template plus plugins, declared in one short module with its
options, plugins and registration.

Strategies compose: ``--strategy ewc+replay+lwf`` runs the parts' plugins in
the order written, with each part's options under ``strategy.options.<part>``.
A strategy alone takes its options the same way (``strategy.options.der.alpha``)
or flat (``strategy.options.alpha``, the form configs and finished runs use):
``StrategySpec.resolve`` reads either, once, into one typed options dataclass per
part (``{part: options}``, defaults filled in), and ``StrategySpec.canonical``
gives the resolved options that differ from their declared defaults, as a run's
config.yaml records them and its run id hashes them (flat alone, per part composed,
parts at their defaults left out): an option written at its default, written flat or
nested, or left out is the same run, and the ids of finished runs stay.
A part appears once; ``naive`` and the reference schedules (``joint``,
``single_task``) compose with nothing; at most one part keeps a buffer of
earlier tasks' images (``replay``, ``der``, ``agem``): each samples its own
``per_task_per_step`` images of every earlier task per step, so two would
exceed the challenge's <= 10 images per task per step.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable

from cl_bench.dataclass_io import describe_field, from_dict, lift, to_dict
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
    parts: tuple[StrategySpec, ...] = ()  # a composition's (or an alias's) parts; () for one registered part

    @property
    def members(self) -> tuple[StrategySpec, ...]:
        """The registered parts whose options this strategy takes: its parts, or itself."""
        return self.parts or (self,)

    def canonical(self, values: dict[str, Any]) -> dict[str, Any]:
        """The resolved options (``resolve``: checked, either layout) that differ from their declared defaults,
        as plain values, in the layout a run's config.yaml records and its run id hashes: flat for a strategy
        alone, ``{part: {key: value}}`` for a composition or an alias, a part at its defaults left out. Every way
        of writing the same options gives the same mapping; options all at their defaults give ``{}``."""
        resolved = self.resolve(values)
        if not self.parts:
            return _changed(resolved[self.name])
        return {name: changed for name, options in resolved.items() if (changed := _changed(options))}

    def options(self, values: dict[str, Any]) -> Any:
        """The typed options: the part's dataclass, or a composition's with one per part (``resolve`` for
        ``{part: options}``)."""
        if not isinstance(values, dict):
            raise CLBenchError(f"strategy.options ({self.name}): expected a mapping, got {values!r}")
        if SEPARATOR not in self.name:
            values = lift(values, self.name, f"strategy.options ({self.name})")
        return from_dict(self.options_type, values, f"strategy.options ({self.name})")

    def resolve(self, values: dict[str, Any]) -> dict[str, Any]:
        """``{part: its options dataclass, defaults filled in}`` from ``strategy.options`` in either layout;
        a bad key or value is one CLBenchError line naming it (``strategy.options (der).alpha: ...``)."""
        options = self.options(values)
        return {self.name: options} if not self.parts else {p.name: getattr(options, p.name) for p in self.parts}

    def build(self, resolved: dict[str, Any], ctx: StrategyContext) -> list:
        """The plugins of ``resolve``'s options."""
        packed = self.options_type(**resolved) if self.parts else resolved[self.name]
        return self.plugins(packed, ctx)

    def describe_options(self) -> list[str]:
        """One line per option from its declaration: ``[part.]name = default (type, allowed): help``."""
        lines = [f"{p.name + '.' if self.parts else ''}{describe_field(f)}"
                 for p in self.members for f in dataclasses.fields(p.options_type)]
        return lines or ["no options"]


def _changed(options: Any) -> dict[str, Any]:
    """A part's options dataclass as plain (JSON) values, the fields at their declared default left out."""
    values, defaults = (json.loads(json.dumps(to_dict(o))) for o in (options, type(options)()))
    return {key: value for key, value in values.items() if value != defaults[key]}


STRATEGIES: dict[str, StrategySpec] = {}


def register(name: str, options_type: type, summary: str, schedule: Schedule = SEQUENTIAL, buffer: bool = False,
             composable: bool = True):
    """Register the decorated plugin builder ``(options, StrategyContext) -> plugins`` as strategy ``name``."""
    def decorate(plugins: Callable[[Any, StrategyContext], list]):
        if name in {f.name for f in dataclasses.fields(options_type)}:
            raise ValueError(f"strategy {name}: an option named {name} would clash with strategy.options.{name}")
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
    return StrategySpec(SEPARATOR.join(names), summary, options_type, plugins, SEQUENTIAL, bool(buffers),
                        parts=tuple(parts))


def get_strategy(name: str) -> StrategySpec:
    """A registered strategy, or the composition ``a+b+...`` of registered ones."""
    return compose(name) if SEPARATOR in name else _known(name)


@dataclass
class NoOptions:
    """This strategy has no options."""
