"""`run_bench.py report` and `run_bench.py export`: results folder -> report; run -> exported model."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.report.selection import MODES, SELECTION_RULE


def add_report_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="tables, figures and report.md over every finished run",
        description="Read every finished run of a results folder (runs.csv and each run's files) and write, "
                    "grouped by strategy (and order, backbone, BN policy, image size, epochs where they vary): "
                    "tables of mean ± std over seeds as CSV and markdown, PNG figures, and report.md, which "
                    "embeds them with the setup and the pass/fail definition.")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--out", type=Path, help="report folder (default: RESULTS/report)")
    parser.add_argument("--device", default="auto", help="device for the latency measurement (default: auto)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    parser.set_defaults(handler=report_command)


def add_export_commands(subparsers: argparse._SubParsersAction) -> None:
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


def report_command(args: argparse.Namespace) -> int:
    from cl_bench.devices import resolve_device
    from cl_bench.report.build import build_report

    build_report(args.results, args.out or args.results / "report",
                 None if args.no_latency else resolve_device(args.device))
    return 0


def export_command(args: argparse.Namespace) -> int:
    from cl_bench.devices import resolve_device
    from cl_bench.report.collect import load_results
    from cl_bench.report.export import card_path, export_run
    from cl_bench.report.selection import select_run

    results = load_results(args.results)
    run_id = args.run or select_run(results, args.select)["run_id"]
    card = export_run(results, run_id, args.out, args.select or "run",
                      resolve_device(args.device) if args.latency else None)
    metrics = card["metrics"]
    kind = "" if card["source_run"]["schedule"] == "sequential" else f" ({card['source_run']['schedule']} reference)"
    print(f"exported {run_id}{kind} to {args.out} (model card {card_path(args.out)})")
    print(f"  pass {metrics['pass']}, mean normalised final {_number(metrics['mean_normalised_final'], '.4f')}; "
          + ", ".join(f"{task} {metrics['metrics'][task]} {_number(v['final'], '.4f')} (base "
                      f"{_number(v['base'], '.4f')}, drop {_number(v['drop_rel_pct'], '.1f')} %)"
                      for task, v in metrics["tasks"].items()))
    for check in card["constraints"]["checks"]:
        print(f"  {check['status']}  {check['name']}: {check['value']} (rule: {check['limit']})")
    return 0
