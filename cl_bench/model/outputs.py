"""The forward contract every model of the harness keeps, built-in or a factory's: ONE head output
tensor ``[B, layout.channels, h, w]`` (``forward_raw``) whose channel slices, in the registry's head
layout, each task turns into its view (``forward``: ``{task: Task.view(slice)}``). Strategies, the
losses, evaluation and the decoders read only ``forward``'s dict; the weights file reads
``config``, ``classes`` and the state_dict."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cl_bench.config import ModelConfig
from cl_bench.tasks import Task, head_layout


@dataclass(frozen=True)
class TaskHead:
    """One task's part of the head output: channels ``start`` to ``stop`` (exclusive)."""

    name: str  # det, seg, cls
    classes: tuple[str, ...]
    start: int
    stop: int
    initial_bias: torch.Tensor  # the bias its output channels start from (Task.initial_bias)

    @property
    def channels(self) -> int:
        return self.stop - self.start

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class HeadLayout:
    """What a model factory receives: the tasks in head order and the channels each reads."""

    tasks: dict[str, TaskHead]
    channels: int  # channels of the one head output, all tasks together

    @classmethod
    def of(cls, classes: dict[str, list[str]], tasks: dict[str, Task]) -> HeadLayout:
        heads, start = {}, 0
        for name in head_layout(classes):
            task, names = tasks[name], tuple(classes[name])
            width = task.channels(len(names))
            heads[name] = TaskHead(name, names, start, start + width, task.initial_bias(len(names)))
            start += width
        return cls(heads, start)

    def initial_bias(self) -> torch.Tensor:
        """The bias of the last layer's ``channels`` outputs the built-in head starts from
        (e.g. detection's objectness prior); a factory may copy it into its own last layer."""
        return torch.cat([head.initial_bias for head in self.tasks.values()])


class TaskOutputModel(nn.Module):
    """The contract's shared half: ``forward`` slices ``forward_raw``'s one tensor per task."""

    def __init__(self, config: ModelConfig, classes: dict[str, list[str]], tasks: dict[str, Task]):
        super().__init__()
        self.config = config
        self.layout = HeadLayout.of(classes, tasks)
        self.classes = {name: list(head.classes) for name, head in self.layout.tasks.items()}
        self.tasks = {name: tasks[name] for name in self.layout.tasks}
        self.slices: dict[str, slice] = {name: head.slice for name, head in self.layout.tasks.items()}

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The single head output tensor [B, layout.channels, h, w]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = self.forward_raw(x)
        size = (x.shape[-2], x.shape[-1])
        return {name: self.tasks[name].view(raw[:, part], size) for name, part in self.slices.items()}

    def parts(self) -> dict[str, nn.Module]:
        """The named parts whose parameters ``parameter_counts`` lists."""
        raise NotImplementedError

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (those the model shows) and ``total``."""
        counts = {name: sum(p.numel() for p in part.parameters()) for name, part in self.parts().items()}
        total = sum(p.numel() for p in self.parameters())
        if sum(counts.values()) != total:
            counts["other"] = total - sum(counts.values())
        counts["total"] = total
        return counts
