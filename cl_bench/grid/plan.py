"""A grid's axes and its expansion into one resolved config per run, validated before any work.

Every axis is a list of ``KEY=VALUE`` config assignments (``strategy.name=ewc``,
``run.seed=1``, ``data.order=[cls, det, seg]``, ``train.lr=0.001``); a run takes
one value of each axis. Building a config from assignments is the caller's
(``cl_bench.config.apply_set``), so this module does not depend on the command line; planning checks
each config (backbone, strategy options, order) before any run folder is made.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from cl_bench.config import Config
from cl_bench.errors import CLBenchError, first_line
from cl_bench.experiment.run_id import check_backbone, run_id_for
from cl_bench.tasks import task_order
from cl_bench.yaml_io import load_yaml


@dataclass
class GridSpec:
    """The axes of a grid: the runs are their Cartesian product."""

    strategies: list[str]
    seeds: list[int]
    orders: list[list[str]]
    fixed: list[str] = field(default_factory=list)  # KEY=VALUE assignments every run takes
    vary: dict[str, list[str]] = field(default_factory=dict)  # KEY -> its YAML values, one axis each
    strategy_seeds: dict[str, list[int]] = field(default_factory=dict)  # a strategy's own seeds, instead of seeds
    declared: dict[str, list[int]] = field(default_factory=dict)  # per strategy: the seeds its grid file fixes

    def seeds_of(self, strategy: str) -> list[int]:
        return self.strategy_seeds.get(strategy, self.seeds)


@dataclass
class GridRun:
    """One run of a grid: its resolved config, run id and the setting it takes on the ``vary`` axes."""

    config: Config
    run_id: str
    setting: str  # "train.lr=0.001, ..." or "" without vary axes

    @property
    def label(self) -> str:
        return f"{self.config.strategy.name} s{self.config.run.seed} {','.join(self.config.data.order)}" + (
            f" {self.setting}" if self.setting else "")


MAX_RUNS = 10_000  # a grid (or a seed list) larger than this is refused unless allowed (--allow-large)


def parse_seeds(text: str, limit: int | None = MAX_RUNS, what: str = "--seeds") -> list[int]:
    """``0-4``, ``0,2,5`` or a mix (``0-2,7``) as a sorted list without repeats; more than ``limit``
    seeds (None: no limit) is a CLBenchError, counted before any list is built. ``what``: how
    messages name the value."""
    ranges: list[tuple[int, int]] = []
    for part in (p.strip() for p in str(text).split(",")):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise CLBenchError(f"{what} {text}: expected seeds like 0-4 or 0,2,5")
        low, high = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if high < low:
            raise CLBenchError(f"{what} {text}: range {part} ends before it starts")
        ranges.append((low, high))
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    count = sum(high - low + 1 for low, high in merged)
    if limit is not None and count > limit:
        raise CLBenchError(f"{what} {text}: {count} seeds, more than a grid's {limit} runs; "
                           "narrow the seeds, or pass --allow-large to run them all")
    return [seed for low, high in merged for seed in range(low, high + 1)]


def grid_size(spec: GridSpec) -> int:
    """How many runs ``spec`` plans: per strategy its seeds x the orders x the ``vary`` settings."""
    settings = math.prod(len(values) for values in spec.vary.values())
    return sum(len(spec.seeds_of(name)) for name in spec.strategies) * len(spec.orders) * settings


def split_values(text: str) -> list[str]:
    """``v1,v2`` split on the commas outside brackets and braces (``[1,2],[3,4]`` is two values)."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    return [v.strip() for v in values]


def parse_set(assignments: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``--set KEY=V`` (fixed) and ``--set KEY=V1,V2`` (an axis) as (fixed assignments, axes)."""
    fixed, vary = [], {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise CLBenchError(f"--set {assignment}: expected KEY=VALUE or KEY=V1,V2,...")
        values = split_values(raw)
        if len(values) == 1:
            fixed.append(f"{key.strip()}={values[0]}")
        else:
            vary[key.strip()] = values
    return fixed, vary


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def load_grid(path: Path, allow_large: bool = False) -> dict[str, Any]:
    """A grid YAML as GridSpec fields (and ``config``, resolved against the YAML's folder):
    ``config``, ``strategies``, ``seeds`` (``0-4`` or a list), ``strategy_seeds`` (STRATEGY: seeds, where
    a strategy has its own), ``orders`` (``seg,det,cls`` strings or lists), ``set`` (KEY: value, every
    run) and ``vary`` (KEY: [values], one axis each)."""
    try:
        values = load_yaml(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise CLBenchError(f"{path}: grid file not found") from None
    except yaml.YAMLError as error:
        raise CLBenchError(f"{path}: not valid YAML ({first_line(error)})") from None
    known = {"config", "strategies", "seeds", "strategy_seeds", "orders", "set", "vary"}
    if not isinstance(values, dict) or set(values) - known:
        raise CLBenchError(f"{path}: a grid file is a mapping with keys {', '.join(sorted(known))}")
    grid: dict[str, Any] = {}
    if "config" in values:
        grid["config"] = str(Path(path).parent / str(values["config"]))
    if "strategies" in values:
        strategies = values["strategies"]
        grid["strategies"] = strategies.split(",") if isinstance(strategies, str) else list(strategies)
    if "seeds" in values:
        seeds = values["seeds"]
        grid["seeds"] = parse_seeds(",".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds),
                                    None if allow_large else MAX_RUNS, f"{path}: seeds")
    own = values.get("strategy_seeds") or {}
    if not isinstance(own, dict):
        raise CLBenchError(f"{path}: strategy_seeds is a mapping STRATEGY: seeds")
    grid["strategy_seeds"] = {str(name): parse_seeds(",".join(map(str, s)) if isinstance(s, list) else str(s),
                                                     None if allow_large else MAX_RUNS,
                                                     f"{path}: strategy_seeds.{name}")
                              for name, s in own.items()}
    if "orders" in values:
        grid["orders"] = [o.split(",") if isinstance(o, str) else list(o) for o in values["orders"]]
    grid["fixed"] = [f"{key}={_yaml_value(value)}" for key, value in (values.get("set") or {}).items()]
    vary = values.get("vary") or {}
    if not all(isinstance(v, list) and v for v in vary.values()):
        raise CLBenchError(f"{path}: every key under 'vary' needs a non-empty list of values")
    grid["vary"] = {key: [_yaml_value(v) for v in vs] for key, vs in vary.items()}
    return grid


def check_size(spec: GridSpec, allow_large: bool = False) -> None:
    """A grid of more than ``MAX_RUNS`` runs is a CLBenchError stating its size, unless ``allow_large``."""
    size = grid_size(spec)
    if size > MAX_RUNS and not allow_large:
        raise CLBenchError(f"the grid has {size} runs, more than {MAX_RUNS}; narrow its strategies, seeds, "
                           "orders or --set values, or pass --allow-large to plan them all")


def plan_runs(spec: GridSpec, configure: Callable[[list[str]], Config], allow_large: bool = False) -> list[GridRun]:
    """One resolved config per combination of the axes, each checked (backbone, strategy and its options,
    order); ``configure`` builds a config from assignments. Raises CLBenchError on the first bad
    value, on two combinations that are the same run, and (unless ``allow_large``) on a grid of
    more than ``MAX_RUNS`` runs, before planning any."""
    from strategies import get_strategy  # here: the command line imports this module, Avalanche is slow to import

    if not (spec.strategies and spec.seeds and spec.orders):
        raise CLBenchError("a grid needs at least one strategy, seed and order")
    check_size(spec, allow_large)
    for name in spec.strategies:
        get_strategy(name)
    settings = [list(zip(spec.vary, values)) for values in itertools.product(*spec.vary.values())]
    runs: dict[str, GridRun] = {}
    combinations = ((strategy, seed, order, setting) for strategy in spec.strategies for seed in spec.seeds_of(strategy)
                    for order, setting in itertools.product(spec.orders, settings))
    for strategy, seed, order, setting in combinations:
        assigned = [f"{key}={value}" for key, value in setting]
        config = configure([*spec.fixed, f"strategy.name={strategy}", f"run.seed={seed}",
                            f"data.order=[{', '.join(order)}]", *assigned])
        check_backbone(config)  # the workers make the run folder before run_experiment checks it
        get_strategy(strategy).options(config.strategy.options)
        task_order(config.data.order)
        run = GridRun(config, run_id_for(config), ", ".join(assigned))
        if run.run_id in runs:
            raise CLBenchError(f"the grid lists run {run.run_id} twice ({runs[run.run_id].label} and {run.label})")
        runs[run.run_id] = run
    return list(runs.values())
