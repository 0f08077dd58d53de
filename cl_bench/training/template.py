"""The multi-task template and the multi-head-output plugin.

The loss dispatch lives in the criterion object (``MultiTaskCriterion``):
Avalanche's EWCPlugin computes importances in its own loop through
``strategy._criterion(out, y)``, bypassing ``strategy.criterion()``. The
plugin owns the per-task weights and logs each task's loss terms.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate

from cl_bench.tasks import Task
from scenarios.collate import MultiTaskTargets


class MultiTaskCriterion:
    """Routes the unified output to each sample's task and sums the per-task
    losses: ``sum_t weight_t * loss_t(output[t][rows_t], targets[t])``."""

    def __init__(self, tasks: dict[str, Task], weights: dict[str, float] | None = None):
        self.tasks = tasks
        self.weights = {name: 1.0 for name in tasks} | (weights or {})
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


class MultiHeadOutputPlugin(SupervisedPlugin):
    """Applies each task's loss through the criterion's weights and records the
    mean loss terms of every task during each training experience."""

    def __init__(self, criterion: MultiTaskCriterion):
        super().__init__()
        self.criterion = criterion
        self.history: list[dict[str, Any]] = []  # rows: train_exp, task, term, value
        self._sums: dict[tuple[str, str], list[torch.Tensor]] = defaultdict(list)

    def before_training_exp(self, strategy, **kwargs):
        self._sums.clear()

    def after_training_iteration(self, strategy, **kwargs):
        for task, terms in self.criterion.last_terms.items():
            for term, value in terms.items():
                self._sums[(task, term)].append(value)

    def after_training_exp(self, strategy, **kwargs):
        exp = strategy.clock.train_exp_counter
        for (task, term), values in sorted(self._sums.items()):
            mean = torch.stack(values).float().mean().item()
            self.history.append({"train_exp": exp, "task": task, "term": term, "value": mean})

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any], context=None) -> None:
        self.history = list(state["history"])


class MultiTaskTemplate(SupervisedTemplate):
    """SupervisedTemplate for the unified model: minibatches are
    ``[images, MultiTaskTargets, task_labels]`` (targets move to the device
    with ``.to``) and the model returns one dict of task outputs."""

    def forward(self):
        return self.model(self.mb_x)

    def make_optimizer(self, reset_optimizer_state: bool = False, **kwargs):
        """The unified model never grows, so the optimizer keeps its parameter
        groups (Avalanche's rebuild supports a single group); its state is
        cleared for a fresh start when asked."""
        if reset_optimizer_state:
            self.optimizer.state.clear()
