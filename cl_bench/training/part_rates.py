"""Per-stage learning-rate scales of the model's parts (``train.part_lr_per_task``), on the optimizer's
per-part parameter groups (``lr_schedule.parameter_groups``): set when an experience starts, read by the
cosine schedule every iteration. A part at scale 0 is frozen for the stage: its parameters stop requiring
gradients (autograd skips its backward pass when nothing before it learns, AdamW its weight decay) and
its BatchNorm layers stay in eval mode; both are restored when the stage ends, before the strategies'
own end-of-stage work (importances, distillation targets) that needs gradients.

A stage that restarts from the initial weights (each ``single_task`` stage) trains every part at its
default: the single-task reference of a run that freezes parts is the task trained alone as usual, never
a task learned with the continual run's handicaps (``rules.setting_key`` leaves the part rates out)."""

from __future__ import annotations

from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from cl_bench.config import PartRates


class PartRatesPlugin(SupervisedPlugin):
    def __init__(self, per_task: dict[str, PartRates]):
        super().__init__()
        self.per_task = per_task
        self._frozen_norms: list[nn.Module] = []  # the frozen parts' BatchNorm layers
        self._requires_grad: dict[int, bool] = {}
        self._restarted = False

    def restart(self) -> None:
        """The model went back to its initial weights: the next experience trains every part at its default."""
        self._restarted = True

    def before_training_exp(self, strategy, **kwargs):
        rates = None if self._restarted else self.per_task.get(strategy.experience.task_name)
        self._restarted = False
        parts = strategy.model.parts()
        self._frozen_norms = []
        for group in strategy.optimizer.param_groups:
            group.setdefault("default_lr_scale", group.get("lr_scale", 1.0))
            scale = getattr(rates, group.get("part", ""), None) if rates is not None else None
            group["lr_scale"] = group["default_lr_scale"] if scale is None else scale
            if group["lr_scale"] == 0:
                for p in group["params"]:
                    self._requires_grad.setdefault(id(p), p.requires_grad)
                    p.requires_grad_(False)
                if group["part"] in parts:
                    self._frozen_norms += [m for m in parts[group["part"]].modules()
                                           if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def before_training_iteration(self, strategy, **kwargs):
        for norm in self._frozen_norms:  # after any plugin that switched the model to train mode
            norm.eval()

    def after_training_exp(self, strategy, **kwargs):
        for group in strategy.optimizer.param_groups:
            for p in group["params"]:
                if id(p) in self._requires_grad:
                    p.requires_grad_(self._requires_grad[id(p)])
        self._requires_grad, self._frozen_norms = {}, []
