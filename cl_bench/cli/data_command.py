"""`run_bench.py data check` and `run_bench.py data prepare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cl_bench.cli.arguments import add_data_arguments, apply_data_arguments
from cl_bench.config import DataConfig


def add_data_commands(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="check or prepare the datasets",
                                 description="Check the datasets, or build them from the official releases.")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="{check,prepare}")
    check = commands.add_parser(
        "check", help="summarise every split of every task and report problems (exit 1 on errors)",
        description="Read every split of every task, decode every image and mask, print a summary table "
                    "(images per split, classes, boxes per class, mask value histogram) and the problems "
                    "found. Exits 1 when there are errors.")
    add_data_arguments(check)
    check.add_argument("--quick", action="store_true", help="read the annotations only, do not decode every file")
    check.set_defaults(handler=data_check)
    prepare = commands.add_parser(
        "prepare", help="build the minis from COCO 2017, VOC2012 and Imagenette (needs internet)",
        description="Download the official releases (cached, resumable, checksummed) and build Mini-VOC-Seg, "
                    "Mini-COCO-Det and Imagenette-160 in the challenge layout, deterministically by seed.")
    prepare.add_argument("--out", default="data", type=Path, help="output folder (default: data)")
    prepare.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    prepare.add_argument("--train", type=int, default=240, help="training images per task (default 240)")
    prepare.add_argument("--val", type=int, default=60, help="validation images per task (default 60)")
    prepare.add_argument("--det-classes", metavar="A,B,...",
                         help="COCO class names (default: the 10 with most boxes in COCO val2017)")
    prepare.add_argument("--cache", type=Path, help="download cache (default: $CL_BENCH_CACHE/downloads "
                                                     "or ~/.cache/cl_bench/downloads)")
    prepare.set_defaults(handler=data_prepare)


def data_check(args: argparse.Namespace) -> int:
    from scenarios.check import check_data, format_checks

    data = apply_data_arguments(DataConfig(), args)
    description, checks = check_data(data, verify=not args.quick)
    print(format_checks(description, checks))
    return 1 if any(c.errors for c in checks) else 0


def data_prepare(args: argparse.Namespace) -> int:
    from scenarios.prepare import prepare_data

    classes = [c.strip() for c in args.det_classes.split(",")] if args.det_classes else None
    counts = prepare_data(args.out, seed=args.seed, n_train=args.train, n_val=args.val,
                          det_classes=classes, cache_dir=args.cache)
    for task, splits in counts.items():
        print(f"{task}: " + ", ".join(f"{split} {n}" for split, n in splits.items()))
    print(f"written to {args.out}; check it with: python run_bench.py data check --data-root {args.out}")
    return 0
