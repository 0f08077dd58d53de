"""`run_bench.py export`: a finished run -> the weights file eval.py reads, with a model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.report.selection import MODES, SELECTION_RULE


def add_export_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="copy the best (or a named) run's model.pt, with a model card, for eval.py",
        description=f"Copy a run's model.pt to --out and write the model card OUT_STEM.card.json beside it "
                    f"(source run, config, metrics, challenge constraint check). Selection rule: {SELECTION_RULE} "
                    "When no run qualifies, the best candidate and its failing tasks are printed and the exit "
                    "code is 1.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--select", choices=MODES, help="pick the run by the selection rule")
    which.add_argument("--run", metavar="RUN_ID", help="export this run")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--out", type=Path, default=Path("best_model.pt"), help="weights file (default: best_model.pt)")
    parser.add_argument("--latency", action="store_true", help="also measure latency for the model card")
    parser.add_argument("--device", default="auto", help="device for --latency (default: auto)")
    parser.set_defaults(handler=export_command)


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def export_command(args: argparse.Namespace) -> int:
    from cl_bench.devices import resolve_device
    from cl_bench.report.collect import load_results
    from cl_bench.report.export import card_path, export_run
    from cl_bench.report.selection import select_run
    from cl_bench.schedules import get_schedule

    results = load_results(args.results)
    run_id = args.run or select_run(results, args.select)["run_id"]
    card = export_run(results, run_id, args.out, args.select or "run",
                      resolve_device(args.device) if args.latency else None)
    metrics = card["metrics"]
    schedule = get_schedule(card["source_run"]["schedule"] or "sequential")
    kind = f" ({schedule.name} reference)" if schedule.reference else ""
    print(f"exported {run_id}{kind} to {args.out} (model card {card_path(args.out)})")
    print(f"  pass {metrics['pass']}, mean normalised final {_number(metrics['mean_normalised_final'], '.4f')}; "
          + ", ".join(f"{task} {metrics['metrics'][task]} {_number(v['final'], '.4f')} (base "
                      f"{_number(v['base'], '.4f')}, drop {_number(v['drop_rel_pct'], '.1f')} %)"
                      for task, v in metrics["tasks"].items()))
    for check in card["constraints"]["checks"]:
        print(f"  {check['status']}  {check['name']}: {check['value']} (rule: {check['limit']})")
    print(f"evaluate it on the data the run used: {card['evaluate']}")
    return 0
