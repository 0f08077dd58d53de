"""Experience replay: an experience-balanced buffer, <= 10 images per earlier task per step."""

from dataclasses import dataclass

from cl_bench.training.replay import TaskBalancedReplayPlugin
from strategies import register


@dataclass
class ReplayOptions:
    mem_size: int = 80  # images kept in memory, split evenly over earlier tasks
    per_task_per_step: int = 10  # the challenge's rule: <= 10 images per task per step


def replay_plugins(options: ReplayOptions, seed: int) -> list:
    return [TaskBalancedReplayPlugin(options.mem_size, options.per_task_per_step, seed)]


@register("replay", ReplayOptions, "rehearse a small buffer of earlier tasks' images in every minibatch")
def plugins(options: ReplayOptions, ctx) -> list:
    return replay_plugins(options, ctx.seed)
