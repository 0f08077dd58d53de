"""`run_bench.py check-model`: the challenge's model rules on the configured model."""

from __future__ import annotations

import argparse

from cl_bench.cli.arguments import add_model_arguments, config_from_args
from cl_bench.config import Config
from cl_bench.tasks import Task


def add_check_model_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-model", help="check the model against the challenge rules (params, head, neck, one forward, latency)",
        description="Build the configured model (model.factory's own model too: docs/own-model.md) and print its "
                    "parameters (total and per part), head layer count and single-branch check, neck rule (INFO "
                    "where an own model shows no head or neck to check), one forward pass for all three outputs "
                    "(per-task BatchNorm statistics fail it) and latency per 512x512 image (batch 1, eval mode, "
                    "median after warm-up) on this device, each with PASS/FAIL against the challenge limits.")
    add_model_arguments(parser)
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    parser.set_defaults(handler=check_model_command)


def placeholder_classes(config: Config, tasks: dict[str, Task]) -> dict[str, list[str]]:
    """Class lists of the configured sizes, for building a model without data."""
    return {name: config.data.classes.get(name) or tasks[name].placeholder_classes() for name in config.data.order}


def check_model_command(args: argparse.Namespace) -> int:
    from cl_bench.devices import resolve_device
    from cl_bench.model import build_model
    from cl_bench.model.challenge_rules import check_model, format_checks
    from cl_bench.model.factory import describe_model
    from cl_bench.tasks import build_tasks

    config = config_from_args(args)
    tasks = build_tasks(config.tasks)
    model = build_model(config.model, placeholder_classes(config, tasks), tasks)
    print(f"model: {describe_model(config.model)}")
    checks = check_model(model, resolve_device(args.device), latency=not args.no_latency,
                         per_task_bn=config.train.bn_policy == "per_task")
    print(format_checks(checks))
    return 1 if any(c.passed is False for c in checks) else 0
