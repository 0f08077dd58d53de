"""Weight interpolation between stages: when a stage has trained, the model becomes
θ_start + α (θ_trained − θ_start), θ_start the weights the stage started from, so it keeps a share α of
what the stage changed and the rest of what earlier tasks had. No inference cost; α per task
(``alpha_per_task``, else ``alpha``); α = 1 keeps the stage's weights.

Applied after the stage's last epoch, before any plugin's end-of-stage work, so LwF's teacher, DER's
stored outputs and EWC's or MAS's importances see the merged model. The first stage (nothing learned
before it) is kept as trained. BatchNorm running statistics are interpolated with the weights; integer
buffers (batch counters) keep the trained value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.dataclass_io import Range, setting
from cl_bench.tasks import task_key
from strategies.registry import register

SHARE = Range(0, 1, open_low=True)


@dataclass
class MergeOptions:
    alpha: float = setting(0.5, allowed=SHARE, help="share of a stage's weight change kept (1: no merge)")
    alpha_per_task: dict[str, float] = setting(default_factory=dict, keys=task_key, allowed=SHARE,
                                               help="alpha of the stage that learns the task, e.g. {cls: 0.3}")


def interpolate(start: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], alpha: float) -> dict:
    """``start + alpha (trained - start)`` for floating-point entries, ``trained`` for the others."""
    return {key: start[key] + alpha * (value - start[key]) if value.is_floating_point() else value
            for key, value in trained.items()}


class MergePlugin(SupervisedPlugin):
    def __init__(self, alpha: float, alpha_per_task: dict[str, float] | None = None):
        super().__init__()
        self.alpha = alpha
        self.alpha_per_task = dict(alpha_per_task or {})
        self._start: dict[str, torch.Tensor] | None = None
        self._epochs = 0

    def before_training_exp(self, strategy, **kwargs):
        first = strategy.clock.train_exp_counter == 0
        self._start = None if first else {k: v.detach().clone() for k, v in strategy.model.state_dict().items()}
        self._epochs = 0

    def after_training_epoch(self, strategy, **kwargs):
        self._epochs += 1
        if self._start is None or self._epochs < strategy.train_epochs:
            return
        alpha = self.alpha_per_task.get(strategy.experience.task_name, self.alpha)
        with torch.no_grad():
            strategy.model.load_state_dict(interpolate(self._start, strategy.model.state_dict(), alpha))
        self._start = None


@register("merge", MergeOptions, "interpolate each stage's weights with those it started from (no inference cost)")
def plugins(options: MergeOptions, ctx) -> list:
    return [MergePlugin(options.alpha, options.alpha_per_task)]
