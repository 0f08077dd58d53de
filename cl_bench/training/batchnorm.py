"""BatchNorm running-statistics policies.

BN statistics drift between tasks and neither EWC nor LwF protects them (in a
prototype, freezing every weight still lost half the segmentation mIoU
through BN drift alone). Policies:
  train               statistics keep updating (plain behaviour)
  freeze_after_first  statistics are frozen after the first experience
  per_task            each task keeps its own statistics; evaluation of a task
                      (and eval.py) uses that task's statistics
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

BN_POLICIES = ("train", "freeze_after_first", "per_task")
_STAT_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def batchnorm_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def snapshot_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every BN layer's running statistics, keyed ``layer.stat``."""
    return {f"{name}.{key}": getattr(bn, key).detach().clone()
            for name, bn in batchnorm_layers(model).items() for key in _STAT_KEYS}


def load_stats(model: nn.Module, stats: dict[str, torch.Tensor]) -> None:
    for name, bn in batchnorm_layers(model).items():
        for key in _STAT_KEYS:
            getattr(bn, key).copy_(stats[f"{name}.{key}"])


class BatchNormPolicyPlugin(SupervisedPlugin):
    def __init__(self, policy: str, task_of_experience):
        super().__init__()
        if policy not in BN_POLICIES:
            raise ValueError(f"unknown BN policy '{policy}' (known: {', '.join(BN_POLICIES)})")
        self.policy = policy
        self.task_of_experience = task_of_experience
        self.per_task: dict[str, dict[str, torch.Tensor]] = {}
        self._trained = 0
        self._training_stats: dict[str, torch.Tensor] | None = None

    def _freeze(self, strategy) -> None:
        if self.policy == "freeze_after_first" and self._trained > 0:
            for bn in batchnorm_layers(strategy.model).values():
                bn.eval()

    def before_training_epoch(self, strategy, **kwargs):
        self._freeze(strategy)

    def before_training_iteration(self, strategy, **kwargs):
        self._freeze(strategy)  # plugins (e.g. EWC) may have switched the model back to train mode

    def after_training_exp(self, strategy, **kwargs):
        self._trained += 1
        if self.policy == "per_task":
            self.per_task[self.task_of_experience(strategy.experience)] = snapshot_stats(strategy.model)

    def before_eval_exp(self, strategy, **kwargs):
        stats = self.per_task.get(self.task_of_experience(strategy.experience))
        if self.policy == "per_task" and stats is not None:
            self._training_stats = snapshot_stats(strategy.model)
            load_stats(strategy.model, stats)

    def after_eval_exp(self, strategy, **kwargs):
        if self._training_stats is not None:
            load_stats(strategy.model, self._training_stats)
            self._training_stats = None

    def state_dict(self) -> dict[str, Any]:
        return {"trained": self._trained, "per_task": self.per_task}

    def load_state_dict(self, state: dict[str, Any], context=None) -> None:
        self._trained = int(state["trained"])
        self.per_task = dict(state["per_task"])
