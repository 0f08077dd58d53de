"""`run_bench.py export`: a finished run -> the weights file eval.py reads, with a model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.report.selection import MODES, SELECTION_RULE
from cl_bench.rules import RULES


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
    parser.add_argument("--rule", choices=RULES,
                        help="the reading of the 5 %% rule runs must pass for --select best: single_task (each "
                             "task within 5 %% of the single-task reference of the same setting) or own_base "
                             "(within 5 %% of its own value right after its stage); default: single_task when "
                             "the results hold a single-task reference, else own_base")
    parser.add_argument("--latency", action="store_true", help="also measure latency for the model card")
    parser.add_argument("--device", default="auto", help="device for --latency (default: auto)")
    parser.set_defaults(handler=export_command)


def _number(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def export_command(args: argparse.Namespace) -> int:
    from cl_bench.devices import resolve_device
    from cl_bench.report.collect import load_results, log_warnings
    from cl_bench.report.export import card_path, export_run
    from cl_bench.report.selection import select_run
    from cl_bench.rules import SINGLE_TASK_RULE
    from cl_bench.schedules import get_schedule

    results = load_results(args.results)
    log_warnings(results)  # as report prints them: what it repaired in runs.csv, which runs it left out
    rule = results.rule(args.rule)
    run_id = args.run or select_run(results, args.select, rule)["run_id"]
    card = export_run(results, run_id, args.out, args.select or "run",
                      resolve_device(args.device) if args.latency else None, rule)
    schedule = get_schedule(card["source_run"]["schedule"] or "sequential")
    kind = f" ({schedule.name} reference)" if schedule.reference else ""
    print(f"exported {run_id}{kind} to {args.out} (model card {card_path(args.out)})")
    selection = card["selection"]
    if args.select:
        print(f"  selected by --select {args.select} under the {rule} rule: score {_number(selection['score'], '.4f')} "
              f"(mean over tasks of final / single-task); {selection['passing']} of {selection['candidates']} "
              f"continual runs pass the {rule} rule")
    for name, verdict in card["rules"].items():
        shown = {True: "pass", False: "FAIL", None: verdict.get("status", "reference")}[verdict["pass"]]
        if name == SINGLE_TASK_RULE and verdict.get("tasks"):
            detail = ", ".join(f"{task} {_number(v['final'], '.4f')} vs {_number(v['reference'], '.4f')} "
                               f"({_number(v['drop_rel_pct'], '.1f')} %)" for task, v in verdict["tasks"].items())
        else:
            detail = ", ".join(f"{task} {_number(v['final'], '.4f')} vs base {_number(v['base'], '.4f')} "
                               f"({_number(v['drop_rel_pct'], '.1f')} %)"
                               for task, v in verdict.get("tasks", {}).items())
        print(f"  {name} rule: {shown}" + (f"; {detail}" if detail else ""))
    for check in card["constraints"]["checks"]:
        print(f"  {check['status']}  {check['name']}: {check['value']} (rule: {check['limit']})")
    print(f"evaluate it on the data the run used: {card['evaluate']}")
    return 0
