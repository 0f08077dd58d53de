"""Stop a run at its first non-finite training loss (a diverged run must not be reported)."""

from __future__ import annotations

import math

from avalanche.training.plugins import SupervisedPlugin

from cl_bench.errors import CLBenchError
from cl_bench.training.criterion import MultiTaskCriterion


class FiniteLossPlugin(SupervisedPlugin):
    """Raises a CLBenchError naming the stage, epoch, step and the non-finite loss terms
    before the backward pass of the first step whose total loss (penalties included) is NaN or inf.
    Register it after the plugins that add penalties to the loss."""

    def __init__(self, criterion: MultiTaskCriterion):
        super().__init__()
        self.criterion = criterion

    def before_backward(self, strategy, **kwargs):
        loss = float(strategy.loss.detach())
        if math.isfinite(loss):
            return
        clock, experience = strategy.clock, strategy.experience
        terms = [f"{task}.{term} {float(value):g}" for task, values in self.criterion.last_terms.items()
                 for term, value in values.items() if not math.isfinite(float(value))]
        raise CLBenchError(
            f"training diverged: loss {loss:g} in stage {clock.train_exp_counter + 1} "
            f"({getattr(experience, 'task_name', 'joint')}), epoch {clock.train_exp_epochs + 1}, step "
            f"{clock.train_epoch_iterations + 1} ({', '.join(terms) or 'a penalty term'}); no result written, "
            f"completed stages stay checkpointed; try a lower train.lr")
