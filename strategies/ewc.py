"""Elastic Weight Consolidation with task-aware importances."""

from dataclasses import dataclass

from cl_bench.training.ewc import TaskAwareEWCPlugin
from strategies import register


@dataclass
class EWCOptions:
    # Importances (mean squared gradients) are tiny (median ~1e-7 per weight after the smoke
    # seg stage), so a large lambda is needed for the penalty to matter: bench/ewc_lambda.py.
    ewc_lambda: float = 1e5
    mode: str = "separate"  # separate | online
    decay_factor: float | None = None  # online mode only (e.g. 0.9)


def ewc_plugins(options: EWCOptions) -> list:
    decay = options.decay_factor if options.mode == "online" else None
    if options.mode == "online" and decay is None:
        decay = 1.0
    return [TaskAwareEWCPlugin(options.ewc_lambda, options.mode, decay)]


@register("ewc", EWCOptions, "EWC penalty on weights important to earlier tasks")
def plugins(options: EWCOptions, ctx) -> list:
    return ewc_plugins(options)
