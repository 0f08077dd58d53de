#!/usr/bin/env python
"""cl_bench: train ONE model on segmentation, detection and classification in
sequence under a continual-learning strategy, and measure what it forgets.

  python run_bench.py --strategy ewc_replay            one run (synthetic default without data)
  python run_bench.py --config experiments/challenge.yaml --data-root data --strategy replay

Other commands (each has --help):
  python run_bench.py data check [--data-root DIR]     summarise and validate the datasets
  python run_bench.py data prepare --out data          build the minis from the official releases
  python run_bench.py check-model [--config X]         check the model against the challenge rules
  python run_bench.py report [--results results]       tables, figures and report.md over the finished runs
  python run_bench.py export --select best --out best_model.pt   the best run's weights + model card
  python run_bench.py tune experiments/tuning/*.yaml   one run per YAML setting, a table of outcomes

Results: results/<run_id>/ (config, metrics.csv, matrices, summary.json, model.pt)
and one row per finished run in results/runs.csv. Re-running an interrupted
command resumes it; a finished run with the same config is skipped.
"""

from __future__ import annotations

import argparse
import sys

from cl_bench.cli import run_command
from cl_bench.data_commands import add_data_commands
from cl_bench.model_commands import add_model_commands
from cl_bench.report_commands import add_export_commands, add_report_commands
from cl_bench.train_command import build_train_parser
from cl_bench.tune_command import add_tune_commands

COMMANDS = {"data": add_data_commands, "check-model": add_model_commands, "report": add_report_commands,
            "export": add_export_commands, "tune": add_tune_commands}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    if command is None:
        parser = argparse.ArgumentParser(prog="run_bench.py", description=__doc__, formatter_class=formatter)
        build_train_parser(parser)
        return parser
    parser = argparse.ArgumentParser(prog="run_bench.py", formatter_class=formatter)
    COMMANDS[command](parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command).parse_args(argv)
    return run_command(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
