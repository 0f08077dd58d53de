"""Learning without Forgetting, task-aware (seg KL, det objectness/class/box, cls KL)."""

from dataclasses import dataclass

from cl_bench.training.lwf import MultiTaskLwFPlugin
from strategies import register


@dataclass
class LwFOptions:
    alpha: float = 1.0  # weight of the distillation terms
    temperature: float = 2.0


@register("lwf", LwFOptions, "distil earlier tasks' outputs from a frozen copy of the previous model")
def plugins(options: LwFOptions, ctx) -> list:
    return [MultiTaskLwFPlugin(ctx.tasks, ctx.task_of_experience, options.alpha, options.temperature)]
