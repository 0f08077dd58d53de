#!/usr/bin/env python
"""Evaluate an exported cl_bench model (the graders' command):

    python eval.py --weights best_model.pt --data_root data --tasks all

See `python eval.py --help`; the code is cl_bench/cli/eval_command.py.
"""

import sys

from cl_bench.cli.eval_command import build_parser, evaluate, main

__all__ = ["build_parser", "evaluate", "main"]

if __name__ == "__main__":
    sys.exit(main())
