"""The multi-task criterion: each sample's loss comes from its own task.

The loss dispatch lives in a criterion object, not in the template: Avalanche's
EWCPlugin computes importances in its own loop through
``strategy._criterion(out, y)``, bypassing ``strategy.criterion()``.
"""

from __future__ import annotations

import torch

from cl_bench.tasks import Task
from cl_bench.tasks.batch import MultiTaskTargets


class MultiTaskCriterion:
    """Routes the unified output to each sample's task and sums the per-task
    losses: ``sum_t weight_t * loss_t(output[t][rows_t], targets[t])``."""

    def __init__(self, tasks: dict[str, Task], weights: dict[str, float] | None = None):
        self.tasks = tasks
        self.weights = dict.fromkeys(tasks, 1.0) | (weights or {})
        self.last_terms: dict[str, dict[str, torch.Tensor]] = {}  # detached, to avoid a device sync per step

    def __call__(self, output: dict[str, torch.Tensor], targets: MultiTaskTargets) -> torch.Tensor:
        total = None
        self.last_terms = {}
        for name, rows in targets.items():
            terms = self.tasks[name].loss(output[name][rows.rows], rows)
            weighted = self.weights[name] * terms["loss"]
            total = weighted if total is None else total + weighted
            self.last_terms[name] = {k: v.detach() for k, v in terms.items()}
        assert total is not None, "empty minibatch"
        return total
