"""cl_bench: train ONE model on segmentation, detection and classification in
sequence under a continual-learning strategy, and measure what it forgets.

  cl-bench --strategy ewc_replay                   one run (synthetic default without data)
  cl-bench --config experiments/challenge.yaml --data-root data --strategy replay

Other commands (each has --help):
  cl-bench data check [--data-root DIR]            summarise and validate the datasets
  cl-bench data prepare --out data                 build the minis from the official releases
  cl-bench check-model [--config X]                check the model against the challenge rules
  cl-bench report [--results results]              tables, figures and report.md over the finished runs
  cl-bench export --select best --out best_model.pt   the best run's weights + model card
  cl-bench tune experiments/recipe/*.yaml          one run per YAML setting, a table of outcomes
  cl-bench grid --strategies naive,ewc --seeds 0-4  strategies x seeds x orders x settings on Ray

Results: results/<run_id>/ (config, metrics.csv, matrices, summary.json, model.pt)
and one row per finished run in results/runs.csv. Re-running an interrupted
command resumes it; a finished run with the same config is skipped.
`cl-bench` (installed by `pip install .`) and `python run_bench.py` are the same.
"""

from __future__ import annotations

import argparse
import sys

from cl_bench.cli.arguments import run_command
from cl_bench.cli.check_model_command import add_check_model_command
from cl_bench.cli.data_command import add_data_commands
from cl_bench.cli.export_command import add_export_command
from cl_bench.cli.grid_command import add_grid_command
from cl_bench.cli.report_command import add_report_command
from cl_bench.cli.train_command import build_train_parser
from cl_bench.cli.tune_command import add_tune_command

COMMANDS = {"data": add_data_commands, "check-model": add_check_model_command, "report": add_report_command,
            "export": add_export_command, "tune": add_tune_command, "grid": add_grid_command}


def build_parser(command: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    if command is None:
        parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=formatter)
        build_train_parser(parser)
        return parser
    parser = argparse.ArgumentParser(prog=prog, formatter_class=formatter)
    COMMANDS[command](parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The `cl-bench` console script and `python run_bench.py`: training by default, or a sub-command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command, prog).parse_args(argv)
    return run_command(lambda: args.handler(args))
