"""`run_bench.py grid ...`: strategies x seeds x orders x settings on Ray, then the grid's summary."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd
import yaml

from cl_bench.cli.arguments import add_data_arguments, add_model_arguments, config_from_args
from cl_bench.config import apply_set
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.experiment.run_id import canonical_config
from cl_bench.grid.plan import (
    MAX_RUNS,
    GridRun,
    GridSpec,
    check_size,
    grid_size,
    load_grid,
    parse_seeds,
    parse_set,
    plan_runs,
)
from cl_bench.grid.status import RunStatus
from cl_bench.rules import SINGLE_TASK_RULE, verdict_text
from cl_bench.seed_plan import finished_seeds, group_key, record_plan

ANNOUNCE_RUNS = 500  # a grid of this many runs or more is announced before it is planned


def add_grid_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grid", help="run strategies x seeds x orders x settings on Ray (local or a cluster)",
        description="Run every combination of strategies, seeds, task orders and --set values, one Ray task "
                    "per run, into --out (runs.csv and one folder per run, as single runs write them). Finished "
                    "runs are skipped; interrupted ones resume from their last completed experience; a run "
                    "whose worker fails or dies is retried (--retries). Without --ray-address a local Ray "
                    "sized to this machine is started. Axes may come from a grid YAML (experiments/grids/); "
                    "flags override it.")
    parser.add_argument("grid_file", nargs="?", type=Path, metavar="GRID_YAML",
                        help="a grid file: config, strategies, seeds, orders, set (every run), vary (axes)")
    group = parser.add_argument_group("grid")
    group.add_argument("--strategies", metavar="A,B", help="comma-separated strategies (see --list-strategies)")
    group.add_argument("--seeds", metavar="0-4|0,2", help="seeds: a range, a list or both (default 0)")
    group.add_argument("--orders", nargs="+", metavar="A,B,C",
                       help="task orders, each a permutation of seg,det,cls (default: the config's)")
    group.add_argument("--set", action="append", default=[], metavar="KEY=V1[,V2...]",
                       help="config override for every run (one value) or a grid axis (several values), "
                            "e.g. --set train.lr=1e-3,3e-4 (repeatable; values are YAML)")
    group.add_argument("--epochs", type=int, help="epochs per experience for every run")
    group.add_argument("--out", help="results folder (default: the config's, results/)")
    group.add_argument("--allow-large", action="store_true",
                       help=f"plan a grid of more than {MAX_RUNS} runs (refused without it)")
    ray_group = parser.add_argument_group("ray")
    ray_group.add_argument("--ray-address", metavar="auto|HOST:PORT",
                           help="join this Ray cluster (default: start a local Ray sized to this machine)")
    ray_group.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs each run asks Ray for (default 1)")
    ray_group.add_argument("--gpus-per-run", type=float, default=0.0,
                           help="GPUs each run asks Ray for; a fraction shares a GPU between runs (default 0)")
    ray_group.add_argument("--max-concurrent", type=int, metavar="K",
                           help="at most K runs at once (default: as many as the resources allow)")
    ray_group.add_argument("--retries", type=int, default=2,
                           help="times a run whose worker failed or died is retried, resuming (default 2)")
    add_model_arguments(parser)
    add_data_arguments(parser)
    parser.set_defaults(handler=grid_command)


def grid_spec(args: argparse.Namespace, from_file: dict) -> GridSpec:
    """The grid's axes from the flags, else the grid file, else the defaults (seed 0, the config's order)."""
    strategies = args.strategies.split(",") if args.strategies else from_file.get("strategies", [])
    allow_large = getattr(args, "allow_large", False)
    seeds = parse_seeds(args.seeds, None if allow_large else MAX_RUNS) if args.seeds else from_file.get("seeds", [0])
    own = {} if args.seeds else from_file.get("strategy_seeds", {})
    orders = [o.split(",") for o in args.orders] if args.orders else from_file.get("orders", [])
    fixed, vary = parse_set(args.set)
    names = [s.strip() for s in strategies if s.strip()]
    # the seeds a grid file fixes for each strategy (--seeds may run some of them now); without one, those asked for
    file_seeds = from_file.get("seeds")
    declared = {name: from_file.get("strategy_seeds", {}).get(name, file_seeds or own.get(name, seeds))
                for name in names}
    return GridSpec(names, seeds, [[t.strip() for t in o] for o in orders], [*from_file.get("fixed", []), *fixed],
                    {**from_file.get("vary", {}), **vary}, own, declared)


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value, ok in (("--cpus-per-run", args.cpus_per_run, args.cpus_per_run > 0),
                            ("--gpus-per-run", args.gpus_per_run, args.gpus_per_run >= 0),
                            ("--max-concurrent", args.max_concurrent, args.max_concurrent is None
                             or args.max_concurrent >= 1),
                            ("--retries", args.retries, args.retries >= 0)):
        if not ok:
            raise CLBenchError(f"{flag} {value}: must be {'positive' if flag != '--retries' else 'at least 0'}")


def runs_table(statuses: list[RunStatus]) -> str:
    """One line per run: what it is, its state, attempts, time and verdict."""
    rows = []
    for s in statuses:
        summary = s.summary or {}
        rows.append({"run": s.run.label, "run_id": s.run.run_id, "state": s.state, "attempts": s.attempts or "",
                     "time s": f"{s.elapsed_s:.0f}" if s.state in ("done", "failed") else "",
                     "pass (own_base)": "" if not summary else "yes" if summary.get("pass") else "no",
                     "pass (single_task)": "" if not summary else verdict_text(summary, SINGLE_TASK_RULE)})
    return pd.DataFrame(rows).to_string(index=False)


def overview(out: Path, run_ids: list[str]) -> str:
    """The report's overview table over the grid's finished runs."""
    from cl_bench.report.collect import load_results
    from cl_bench.report.tables import aggregate, overview_table

    results = load_results(out)
    results.runs = results.runs[results.runs["run_id"].isin(run_ids)]
    if results.runs.empty:
        return ""
    return overview_table(aggregate(results), results, results.default_rule).view.to_string(index=False)


def plan_from_args(args: argparse.Namespace) -> tuple[GridSpec, list[GridRun], Path]:
    """The grid's axes, its validated runs and the results folder, from the flags and the grid file."""
    _check_numbers(args)
    from_file = load_grid(args.grid_file, getattr(args, "allow_large", False)) if args.grid_file else {}
    if args.config is None:
        args.config = from_file.get("config")
    base = config_from_args(args)
    if args.out:
        base.run.out = args.out
    spec = grid_spec(args, from_file)
    if args.epochs is not None:  # after the grid file's own settings: flags override the file
        spec.fixed.append(f"train.epochs={args.epochs}")
    if not spec.orders:
        spec.orders = [list(base.data.order)]
    allow_large = getattr(args, "allow_large", False)
    check_size(spec, allow_large)  # before anything is planned or printed
    if grid_size(spec) >= ANNOUNCE_RUNS:  # planning takes a while: say so at once
        print(f"grid: planning {grid_size(spec)} runs ...", flush=True)
    runs = plan_runs(spec, lambda assignments: apply_set(base, assignments), allow_large)
    return spec, runs, Path(base.run.out)


def describe_grid(spec: GridSpec, out: Path) -> str:
    """The grid's size and axes, one line."""
    settings = math.prod(len(values) for values in spec.vary.values())
    own = [name for name in spec.strategies if name in spec.strategy_seeds]
    seeds = f"{len(spec.seeds)} seeds" + "".join(f", {name} {len(spec.seeds_of(name))}" for name in own)
    return (f"grid: {grid_size(spec)} runs ({len(spec.strategies)} strategies x {seeds} x "
            f"{len(spec.orders)} orders x {settings} settings) into {out}")


def plan_groups(runs: list[GridRun], spec: GridSpec, out: Path) -> list[tuple[str, str, list[int], list[int]]]:
    """Per group of the grid's runs: its key, strategy, the seeds its grid file fixes (with the seeds asked
    for now) and the seeds it has finished in ``out`` (``seed_plan.record_plan``'s input)."""
    finished = finished_seeds(out)
    groups: dict[str, tuple[str, str, list[int], list[int]]] = {}
    for run in runs:
        config = canonical_config(yaml.safe_load(yaml.safe_dump(to_dict(run.config))))  # as its config.yaml records it
        key, name = group_key(config), run.config.strategy.name
        declared = groups.setdefault(key, (key, name, list(spec.declared.get(name, [])), finished.get(key, [])))[2]
        if run.config.run.seed not in declared:
            declared.append(run.config.run.seed)
    return list(groups.values())


def grid_command(args: argparse.Namespace) -> int:
    from cl_bench.grid.driver import GridOptions, run_grid

    spec, runs, out = plan_from_args(args)
    print(describe_grid(spec, out), flush=True)
    groups = plan_groups(runs, spec, out)  # the finished seeds as they are before this grid runs

    def record() -> None:
        for note in record_plan(out, groups):
            print(f"note: {note}", flush=True)
    statuses = run_grid(runs, GridOptions(out, args.ray_address, args.cpus_per_run, args.gpus_per_run,
                                          args.max_concurrent, args.retries, on_start=record))
    tally = {state: sum(s.state == state for s in statuses) for state in ("done", "skipped", "failed")}
    if tally["skipped"] == len(statuses):
        print(f"all {len(statuses)} runs of this grid had already finished in {out}: skipped, nothing trained")
    else:
        print(f"\n{tally['done']} trained, {tally['skipped']} skipped (already finished), {tally['failed']} failed")
    print(runs_table(statuses))
    table = overview(out, [s.run.run_id for s in statuses if s.state != "failed"])
    if table:
        print(f"\n{table}")
    print(f"\nfull report: python run_bench.py report --results {out}")
    if tally["failed"]:
        print(f"{tally['failed']} runs failed; run the same command again to retry them (finished runs are skipped)")
        return 1
    return 0
