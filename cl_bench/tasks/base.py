"""The Task: everything one task (seg, det, cls) declares, so the rest of the
harness can loop over tasks instead of branching on their names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:
    from cl_bench.config import DataConfig
    from scenarios.common import TaskSplit


class Task:
    """Base class of the three tasks. Subclasses set the class attributes and
    implement the per-task hooks."""

    name: ClassVar[str]  # short name used in configs, CSVs and task labels: seg, det, cls
    title: ClassVar[str]  # long name: segmentation, detection, classification
    dataset: ClassVar[str]  # the challenge's dataset name
    folder_names: ClassVar[tuple[str, ...]]  # accepted folder names below a data root
    split_type: ClassVar[type[TaskSplit]]  # the reader

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name, self.title)

    def resolve_classes(self, task_root: Path, data: DataConfig) -> list[str]:
        """The class list shared by every split, read from the training split."""
        return self.split_type.resolve_classes(task_root, data.train_split, data.classes.get(self.name))

    def open_split(self, task_root: Path, split: str, classes: list[str]) -> TaskSplit:
        return self.split_type(task_root, split, classes)

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack this task's own target fields of a sub-batch."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


def stack_field(targets: list[dict[str, Any]], key: str) -> torch.Tensor:
    return torch.stack([torch.as_tensor(t[key]).as_subclass(torch.Tensor) for t in targets])
