"""`run_bench.py report`: a results folder -> tables, figures and report.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.rules import RULES


def add_report_command(subparsers: argparse._SubParsersAction) -> None:
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
    parser.add_argument("--rule", choices=RULES,
                        help="the reading of the 5 %% rule the report leads with (both are shown): single_task "
                             "(each task within 5 %% of the single-task reference of the same setting) or "
                             "own_base (within 5 %% of its own value right after its stage); default: "
                             "single_task when the results hold a single-task reference, else own_base")
    parser.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> int:
    from cl_bench.devices import resolve_device
    from cl_bench.report.build import build_report

    build_report(args.results, args.out or args.results / "report",
                 None if args.no_latency else resolve_device(args.device), rule=args.rule)
    return 0
