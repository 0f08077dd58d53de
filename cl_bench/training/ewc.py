"""Task-aware EWC: Avalanche's EWCPlugin with our criterion (so importances
are squared gradients of the experience's own task loss) and a state_dict for
resuming."""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import ParamData


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
