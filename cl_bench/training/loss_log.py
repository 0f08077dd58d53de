"""Per-task training loss terms, averaged over each training experience."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.training.criterion import MultiTaskCriterion


class LossLogPlugin(SupervisedPlugin):
    """Records the mean of every loss term the criterion reports, per task,
    over each training experience (rows of ``history``: train_exp, task, term, value)."""

    def __init__(self, criterion: MultiTaskCriterion):
        super().__init__()
        self.criterion = criterion
        self.history: list[dict[str, Any]] = []
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

