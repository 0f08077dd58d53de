"""`run_bench.py tune CONFIG...`: a documented search, one YAML per tried setting."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_tune_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune", help="train one run per YAML setting and tabulate the outcomes",
        description="Train one run per YAML file (each usually 'base: start.yaml' plus the keys it changes) "
                    "into --out, skipping settings already finished, then write OUT/tuning.csv and "
                    "OUT/tuning.md: per setting, the keys its YAML changes, each task's base (right after it "
                    "was learned), final value and relative drop, and the 5 % verdict. Every setting trains on "
                    "the training split minus a tune split it is evaluated on (--tune-split images per task, the "
                    "same for every setting), so settings are never chosen on the val numbers results report.")
    parser.add_argument("configs", nargs="+", type=Path, metavar="YAML", help="one YAML per tried setting")
    parser.add_argument("--out", type=Path, default=Path("results/tuning"),
                        help="results folder of the search (default: results/tuning)")
    parser.add_argument("--tune-split", type=int, default=40, metavar="N",
                        help="training images per task held out and evaluated on (default 40; a YAML's own "
                             "data.tune_split wins)")
    parser.set_defaults(handler=tune_command)


def tune_command(args: argparse.Namespace) -> int:
    from cl_bench.grid.tuning import run_search

    table = run_search(args.configs, args.out, tune_split=args.tune_split)
    print(table.drop(columns="run_id").to_string(index=False))
    print(f"\noutcomes: {args.out / 'tuning.md'}, {args.out / 'tuning.csv'}")
    return 0
