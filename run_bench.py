#!/usr/bin/env python
"""cl_bench: train one model on segmentation, detection and classification in
sequence under a continual-learning strategy, and measure what it forgets.

Commands:
  python run_bench.py data check [--data-root DIR]   summarise and validate the datasets
  python run_bench.py data prepare --out data        build the minis from the official releases
  python run_bench.py check-model [--config X]       check the model against the challenge rules
"""

from __future__ import annotations

import argparse
import sys

from cl_bench.cli import run_command
from cl_bench.data_commands import add_data_commands
from cl_bench.model_commands import add_model_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_commands(commands)
    add_model_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
