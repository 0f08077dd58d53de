"""BatchNorm running-statistics policies.

BN statistics drift between tasks and neither EWC nor LwF protects them (in a
prototype, freezing every weight still lost half the segmentation mIoU
through BN drift alone). Policies:
  train               statistics keep updating (plain behaviour)
  freeze_after_first  statistics are frozen after the first experience (a
                      stage that restarts from the initial weights, as each
                      single_task stage does, is a first experience again)
  per_task            each task keeps its own statistics; evaluation of a task
                      (and eval.py) uses that task's statistics
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.config import BN_POLICIES  # the names train.bn_policy allows, checked when the config is loaded
from cl_bench.model.batchnorm_stats import batchnorm_layers, load_stats, snapshot_stats


class BatchNormPolicyPlugin(SupervisedPlugin):
    def __init__(self, policy: str):
        super().__init__()
        if policy not in BN_POLICIES:
            raise ValueError(f"unknown BN policy '{policy}' (known: {', '.join(BN_POLICIES)})")
        self.policy = policy
        self.per_task: dict[str, dict[str, torch.Tensor]] = {}
        self._trained = 0
        self._training_stats: dict[str, torch.Tensor] | None = None

    def _freeze(self, strategy) -> None:
        if self.policy == "freeze_after_first" and self._trained > 0:
            for bn in batchnorm_layers(strategy.model).values():
                bn.eval()

    def restart(self) -> None:
        """The model went back to its initial weights: the next experience is a first one."""
        self._trained = 0

    def before_training_epoch(self, strategy, **kwargs):
        self._freeze(strategy)

    def before_training_iteration(self, strategy, **kwargs):
        self._freeze(strategy)  # plugins (e.g. EWC) may have switched the model back to train mode

    def after_training_exp(self, strategy, **kwargs):
        self._trained += 1
        if self.policy == "per_task":
            self.per_task[strategy.experience.task_name] = snapshot_stats(strategy.model)

    def before_eval_exp(self, strategy, **kwargs):
        stats = self.per_task.get(strategy.experience.task_name)
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
