"""Elastic Weight Consolidation with task-aware importances.

Avalanche's EWCPlugin with our criterion (so importances are squared
gradients of the experience's own task loss) and a state_dict for resuming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import ParamData

from cl_bench.dataclass_io import AT_LEAST_0, PROBABILITY, setting
from cl_bench.errors import CLBenchError
from strategies.registry import register

# separate: one anchor and importance per earlier experience | online: one running importance, decayed
# (Avalanche's EWCPlugin asserts one of these; the options refuse any other name in one line)
EWC_MODES = ("separate", "online")


@dataclass
class EWCOptions:
    # Importances (mean squared gradients) are tiny (median ~1e-7 per weight after the smoke
    # seg stage), so a large lambda is needed for the penalty to matter: bench/ewc_lambda.py.
    ewc_lambda: float = setting(1e5, allowed=AT_LEAST_0, help="weight of the EWC penalty")
    mode: str = setting("separate", choices=EWC_MODES,
                        help="separate: one anchor and importance per earlier task; online: one, decayed")
    decay_factor: float | None = setting(None, allowed=PROBABILITY,
                                         help="online mode only: weight of the earlier importances (e.g. 0.9)")

    def __post_init__(self) -> None:
        # a setting the mode ignores would be recorded, change the run id and do nothing
        if self.mode == "separate" and self.decay_factor is not None:
            raise CLBenchError(f"ewc.decay_factor: {self.decay_factor} applies to mode online only (mode is separate)")
        if self.mode == "online" and self.decay_factor is None:
            raise CLBenchError("ewc.decay_factor: mode online needs one (e.g. 0.9)")


def _to_tensors(params: dict[int, dict[str, ParamData]]) -> dict[int, dict[str, torch.Tensor]]:
    return {exp: {k: p.data.detach().cpu().clone() for k, p in values.items()} for exp, values in params.items()}


def _to_params(tensors: dict[int, dict[str, torch.Tensor]], device) -> dict[int, dict[str, ParamData]]:
    return {int(exp): {k: ParamData(k, init_tensor=t.to(device), device=device) for k, t in values.items()}
            for exp, values in tensors.items()}


class TaskAwareEWCPlugin(EWCPlugin):
    """EWC penalty ``lambda * sum_i F_i (theta_i - theta*_i)^2`` (modes
    ``separate`` and ``online``)."""

    def __init__(self, ewc_lambda: float, mode: str = "separate", decay_factor: float | None = None):
        super().__init__(ewc_lambda, mode=mode, decay_factor=decay_factor)

    def state_dict(self) -> dict[str, Any]:
        return {"saved_params": _to_tensors(self.saved_params), "importances": _to_tensors(self.importances)}

    def load_state_dict(self, state: dict[str, Any], context) -> None:
        self.saved_params.clear()
        self.importances.clear()
        self.saved_params.update(_to_params(state["saved_params"], context.device))
        self.importances.update(_to_params(state["importances"], context.device))


def ewc_plugins(options: EWCOptions) -> list:
    decay = options.decay_factor if options.mode == "online" else None
    if options.mode == "online" and decay is None:
        decay = 1.0
    return [TaskAwareEWCPlugin(options.ewc_lambda, options.mode, decay)]


@register("ewc", EWCOptions, "EWC penalty on weights important to earlier tasks")
def plugins(options: EWCOptions, ctx) -> list:
    return ewc_plugins(options)
