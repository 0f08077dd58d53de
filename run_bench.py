#!/usr/bin/env python
"""cl_bench's command line from a checkout: the same as the installed `cl-bench`
(see `python run_bench.py --help`)."""

import sys

from cl_bench.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="run_bench.py"))
