"""Learning rates: one parameter group per model part (a slower backbone), and, per experience,
linear warm-up then cosine decay to zero."""

from __future__ import annotations

import math

from avalanche.training.plugins import SupervisedPlugin
from torch import nn


def parameter_groups(model: nn.Module, backbone_lr_scale: float = 1.0) -> list[dict]:
    """One group per named part of the model (``parts()``: backbone, neck, head), then one for any other
    parameter (``rest``); each names its ``part`` and holds its default ``lr_scale``: ``backbone_lr_scale``
    for the backbone, 1 for the others."""
    groups, seen = [], set()
    for name, part in model.parts().items():
        params = [p for p in part.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        groups.append({"params": params, "part": name, "lr_scale": backbone_lr_scale if name == "backbone" else 1.0})
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:
        groups.append({"params": rest, "part": "rest", "lr_scale": 1.0})
    return groups


class CosineLRPlugin(SupervisedPlugin):
    """Sets the learning rate every iteration from the experience's progress.

    ``base_lr`` gives the rate of an experience from its task name, so each
    stage may use its own (e.g. a lower rate for later tasks).
    """

    def __init__(self, base_lr, warmup_steps: int = 0):
        super().__init__()
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self._total = self._step = 0
        self._lr = 0.0

    def before_training_exp(self, strategy, **kwargs):
        self._lr = self.base_lr(strategy.experience.task_name)
        self._total = max(strategy.train_epochs * len(strategy.dataloader), 1)
        self._step = 0

    def before_training_iteration(self, strategy, **kwargs):
        if self._step < self.warmup_steps:
            factor = (self._step + 1) / self.warmup_steps
        else:
            progress = (self._step - self.warmup_steps) / max(self._total - self.warmup_steps, 1)
            factor = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for group in strategy.optimizer.param_groups:
            group["lr"] = self._lr * factor * group.get("lr_scale", 1.0)
        self._step += 1
