"""What a Task receives: the targets of its rows in a minibatch, and ONE
collate for every task (a minibatch may mix tasks under replay, and Avalanche
collates a mixed minibatch with the current experience's collate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch

from cl_bench.tasks import TASKS


def _move(value: Any, device: torch.device | str, non_blocking: bool) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, list):
        return [_move(v, device, non_blocking) for v in value]
    return value


@dataclass
class TaskTargets:
    """The targets of one task's rows in a minibatch.

    ``rows`` are the row indices in the minibatch; ``index`` the dataset indices
    and ``orig_size`` the (H, W) before resizing, for mapping predictions back;
    ``input_size`` the (H, W) of the minibatch images, in whose pixels boxes
    are given; ``fields`` the task's own targets (stacked tensors or lists).
    """

    rows: torch.Tensor
    index: torch.Tensor
    orig_size: torch.Tensor
    input_size: tuple[int, int]
    fields: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def __len__(self) -> int:
        return len(self.rows)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TaskTargets:
        return TaskTargets(
            *(_move(v, device, non_blocking) for v in (self.rows, self.index, self.orig_size)),
            self.input_size,
            {k: _move(v, device, non_blocking) for k, v in self.fields.items()},
        )


class MultiTaskTargets(Mapping[str, TaskTargets]):
    """Per-task sub-batches of a minibatch, keyed by task name. ``len`` is the
    minibatch size (Avalanche's loss metric counts patterns with it)."""

    def __init__(self, by_task: dict[str, TaskTargets], batch_size: int):
        self.by_task = by_task
        self.batch_size = batch_size

    def __getitem__(self, task: str) -> TaskTargets:
        return self.by_task[task]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_task)

    def __len__(self) -> int:
        return self.batch_size

    def to(self, device: torch.device | str, non_blocking: bool = False) -> MultiTaskTargets:
        return MultiTaskTargets({k: v.to(device, non_blocking) for k, v in self.by_task.items()}, self.batch_size)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {len(v)} rows" for k, v in self.by_task.items())
        return f"MultiTaskTargets({parts})"


def collate_multitask(samples: list[tuple]) -> list[Any]:
    """``[(image, target, task_label, ...)]`` → ``[images, MultiTaskTargets, task_labels, ...]``."""
    images = torch.stack([s[0].as_subclass(torch.Tensor) for s in samples])
    grouped: dict[str, list[int]] = {}
    for row, sample in enumerate(samples):
        grouped.setdefault(sample[1]["task"], []).append(row)
    by_task = {}
    for name, rows in grouped.items():
        targets = [samples[r][1] for r in rows]
        by_task[name] = TaskTargets(
            rows=torch.tensor(rows, dtype=torch.int64),
            index=torch.tensor([t["index"] for t in targets], dtype=torch.int64),
            orig_size=torch.tensor([t["orig_size"] for t in targets], dtype=torch.int64).reshape(-1, 2),
            input_size=(images.shape[-2], images.shape[-1]),
            fields=TASKS[name].collate_targets(targets),
        )
    extra = [torch.as_tensor([s[k] for s in samples]) for k in range(2, len(samples[0]))]
    return [images, MultiTaskTargets(by_task, len(samples)), *extra]
