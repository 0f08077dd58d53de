"""Learning without Forgetting, task-aware (seg KL, det objectness/class/box, cls KL).

Avalanche's LwF assumes classification targets; here each earlier task's
distillation term (declared by the Task) keeps the student's output for that
task close to a frozen copy of the model taken after the previous experience,
on the current minibatch's images.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin

from cl_bench.dataclass_io import AT_LEAST_0, POSITIVE, setting
from cl_bench.tasks import Task
from strategies.registry import register


@dataclass
class LwFOptions:
    alpha: float = setting(1.0, allowed=AT_LEAST_0, help="weight of the distillation terms")
    temperature: float = setting(2.0, allowed=POSITIVE, help="softening temperature of the distilled outputs")


class MultiTaskLwFPlugin(SupervisedPlugin):
    def __init__(self, tasks: dict[str, Task], alpha: float = 1.0, temperature: float = 2.0):
        super().__init__()
        self.tasks = tasks
        self.alpha = alpha
        self.temperature = temperature
        self.teacher: torch.nn.Module | None = None
        self.learned: list[str] = []

    def before_backward(self, strategy, **kwargs):
        if self.teacher is None or not self.alpha:
            return
        with torch.no_grad():
            teacher_out = self.teacher(strategy.mb_x)
        for name in self.learned:
            term = self.tasks[name].distillation(strategy.mb_output[name], teacher_out[name], self.temperature)
            strategy.loss += self.alpha * term

    def after_training_exp(self, strategy, **kwargs):
        name = strategy.experience.task_name
        if name not in self.learned:
            self.learned.append(name)
        self.teacher = self._frozen_copy(strategy.model)

    @staticmethod
    def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def state_dict(self) -> dict[str, Any]:
        return {"learned": list(self.learned),
                "teacher": None if self.teacher is None else self.teacher.state_dict()}

    def load_state_dict(self, state: dict[str, Any], context) -> None:
        self.learned = list(state["learned"])
        self.teacher = None
        if state["teacher"] is not None:
            self.teacher = self._frozen_copy(context.model)
            self.teacher.load_state_dict(state["teacher"])


@register("lwf", LwFOptions, "distil earlier tasks' outputs from a frozen copy of the previous model")
def plugins(options: LwFOptions, ctx) -> list:
    return [MultiTaskLwFPlugin(ctx.tasks, options.alpha, options.temperature)]
