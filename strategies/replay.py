"""Experience replay: an experience-balanced buffer, <= 10 images per earlier task per step.

The buffer's content is a list of dataset indices per experience (so a
checkpoint can store and restore it), and every minibatch carries at most
``per_task_per_step`` replayed images of each earlier task (the challenge's
rule: <= 10 images per task per step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import BalancedExemplarsBuffer, ExemplarsBuffer

from cl_bench.dataclass_io import AT_LEAST_1, setting
from strategies.registry import register


@dataclass
class ReplayOptions:
    mem_size: int = setting(80, allowed=AT_LEAST_1, help="images kept in memory, split evenly over earlier tasks")
    per_task_per_step: int = setting(10, allowed=AT_LEAST_1,
                                     help="replayed images per earlier task per step (the rule: <= 10)")


class IndexGroup(ExemplarsBuffer):
    """One experience's share of the buffer: a random order of its dataset's
    indices, of which the first ``max_size`` are kept."""

    def __init__(self, dataset: AvalancheDataset, order: list[int], max_size: int):
        super().__init__(max_size)
        self.dataset, self.order = dataset, list(order)
        self.resize(None, max_size)

    @property
    def indices(self) -> list[int]:
        return self.order[: self.max_size]

    def resize(self, strategy, new_size: int):
        self.max_size = new_size
        self.buffer = self.dataset.subset(self.indices)


class IndexedReplayBuffer(BalancedExemplarsBuffer[IndexGroup]):
    """Memory of ``max_size`` images split evenly over the experiences seen."""

    def __init__(self, max_size: int, seed: int = 0):
        super().__init__(max_size, adaptive_size=True)
        self.seed = seed
        self.orders: dict[int, list[int]] = {}

    def post_adapt(self, agent, exp):
        experience = len(self.buffer_groups)
        generator = torch.Generator().manual_seed(self.seed * 1000 + experience)
        self.orders[experience] = torch.randperm(len(exp.dataset), generator=generator).tolist()
        self._add_group(experience, exp.dataset)

    def _add_group(self, experience: int, dataset: AvalancheDataset) -> None:
        self.buffer_groups[experience] = IndexGroup(dataset, self.orders[experience], 0)
        for size, group in zip(self.get_group_lengths(len(self.buffer_groups)), self.buffer_groups.values()):
            group.resize(None, size)

    def state_dict(self) -> dict[str, Any]:
        return {"orders": {k: list(v) for k, v in self.orders.items()}}

    def load_state_dict(self, state: dict[str, Any], datasets: list[AvalancheDataset]) -> None:
        """Rebuild the groups from the saved orders over the experiences' training datasets."""
        self.buffer_groups.clear()
        self.orders = {int(k): list(v) for k, v in state["orders"].items()}
        for experience in sorted(self.orders):
            self._add_group(experience, datasets[experience])


class TaskBalancedReplayPlugin(ReplayPlugin):
    """Avalanche's ReplayPlugin with a task-balanced memory minibatch of
    ``per_task_per_step`` images for each task in the buffer."""

    def __init__(self, mem_size: int = 80, per_task_per_step: int = 10, seed: int = 0):
        super().__init__(mem_size=mem_size, task_balanced_dataloader=True,
                         storage_policy=IndexedReplayBuffer(mem_size, seed))
        self.per_task_per_step = per_task_per_step

    def before_training_exp(self, strategy, num_workers: int = 0, shuffle: bool = True, drop_last: bool = False,
                            **kwargs):
        tasks_in_memory = len(self.storage_policy.buffer_groups)
        self.batch_size_mem = self.per_task_per_step * max(tasks_in_memory, 1)
        super().before_training_exp(strategy, num_workers=num_workers, shuffle=shuffle, drop_last=drop_last,
                                    **kwargs)

    def after_training_exp(self, strategy, **kwargs):
        self.storage_policy.post_adapt(strategy, strategy.experience)

    def state_dict(self) -> dict[str, Any]:
        return self.storage_policy.state_dict()

    def load_state_dict(self, state: dict[str, Any], context) -> None:
        self.storage_policy.load_state_dict(state, context.datasets)


def replay_plugins(options: ReplayOptions, seed: int) -> list:
    return [TaskBalancedReplayPlugin(options.mem_size, options.per_task_per_step, seed)]


@register("replay", ReplayOptions, "rehearse a small buffer of earlier tasks' images in every minibatch",
          buffer=True)
def plugins(options: ReplayOptions, ctx) -> list:
    return replay_plugins(options, ctx.seed)
