"""The Task: everything one task (seg, det, cls) declares, so the rest of the
harness loops over tasks instead of branching on their names.

A task declares its options, its dataset reader and class list, its channels
of the unified head output and the view the model returns for it, its loss,
its decoding, its metric, the metrics reports show, its distillation term
(for LwF) and the output that output replay stores and matches (for DER).
The registry (``cl_bench.tasks``) is the single list of tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F

from cl_bench.bootstrap import Statistic

if TYPE_CHECKING:
    from cl_bench.tasks.batch import TaskTargets
    from scenarios.common import TaskSplit


class TaskMetric:
    """Accumulates one task's predictions over a split; ``result()`` gives
    ``{metric name: value}`` with the task's primary metric first, and
    ``samples()`` the per-image evidence the bootstrap resamples."""

    def update(self, output: torch.Tensor, targets: TaskTargets) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        raise NotImplementedError

    def samples(self) -> dict[str, Any]:
        """Per-image evidence: ``index`` (the evaluated dataset indices, sorted) and what
        the task needs per image, in that order (tensors, lists and numbers: a checkpoint
        keeps it); ``Task.statistics`` turns it back into metrics."""
        raise NotImplementedError


class Task:
    """Base class of the three tasks."""

    name: ClassVar[str]  # short name used in configs, CSVs and outputs: seg, det, cls
    title: ClassVar[str]  # long name: segmentation, detection, classification
    dataset: ClassVar[str]  # the challenge's dataset name
    folder_names: ClassVar[tuple[str, ...]]  # accepted folder names below a data root
    split_type: ClassVar[type[TaskSplit]]  # the reader
    metrics: ClassVar[tuple[str, ...]]  # metric names, primary first
    report_metrics: ClassVar[tuple[str, ...]]  # the metrics report tables show (primary first)
    metric_labels: ClassVar[dict[str, str]] = {}  # how tables print a metric name (default: the name)
    options_type: ClassVar[type]  # its options dataclass: the ``tasks.<name>`` config section
    default_num_classes: ClassVar[int]  # class count of a model built without data (check-model)
    # Position of this task's channels in the head output, lower first. It fixes the
    # channel layout that exported weights carry; a new task goes after the others.
    head_rank: ClassVar[int] = 100
    # Whether the model's classes are a selection of those the data declares (detection keeps the
    # most frequent; the others' annotations are ignored, in training and in eval.py alike) rather
    # than the data's whole class set: eval.py then accepts data with classes beyond the model's.
    selects_classes: ClassVar[bool] = False

    def __init__(self, options: Any | None = None):
        self.options = options if options is not None else self.options_type()

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name, self.title)

    # ---- data ---------------------------------------------------------------------
    def resolve_classes(self, task_root: Path, train_split: str, requested: list[str] | None) -> list[str]:
        """The class list shared by every split, read from the training split
        (``requested``: the configured list, checked against the data)."""
        return self.split_type.resolve_classes(task_root, train_split, requested)

    def split_classes(self, task_root: Path, split: str) -> list[str]:
        """The class names a split itself declares (eval.py compares them by name with a model's)."""
        return self.split_type.resolve_classes(task_root, split, None)

    def classes_file(self, task_root: Path, split: str) -> Path:
        """Where ``split_classes`` reads a split's class names (eval.py's messages name it): the split folder."""
        return task_root / split

    def ignored_annotations(self, split: TaskSplit) -> int | None:
        """How many annotations of ``split`` belong to none of the classes it was opened with
        (a selecting task ignores them); None where the task does not count them."""
        return None

    def placeholder_classes(self) -> list[str]:
        """Class names of a model built without data."""
        return [f"{self.name}{i}" for i in range(self.default_num_classes)]

    def open_split(self, task_root: Path, split: str, classes: list[str]) -> TaskSplit:
        return self.split_type(task_root, split, classes)

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack this task's own target fields of a sub-batch."""
        raise NotImplementedError

    # ---- model output -------------------------------------------------------------
    def channels(self, num_classes: int) -> int:
        """Channels of the unified head output this task reads."""
        return num_classes

    def view(self, raw: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """This task's output from its channel slice of the stride-16 head output."""
        return raw

    def initial_bias(self, num_classes: int) -> torch.Tensor:
        """Initial bias of this task's output channels."""
        return torch.zeros(self.channels(num_classes))

    # ---- learning -----------------------------------------------------------------
    def loss(self, output: torch.Tensor, targets: TaskTargets) -> dict[str, torch.Tensor]:
        """Loss terms of this task's rows; ``"loss"`` is their weighted total."""
        raise NotImplementedError

    def distillation(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """How far the student's output is from a frozen teacher's, on any input."""
        raise NotImplementedError

    def stored_output(self, output: torch.Tensor) -> torch.Tensor:
        """The copy of this task's output that output replay (DER) keeps per image: the output itself."""
        return output

    def output_matching(self, student: torch.Tensor, stored: torch.Tensor) -> torch.Tensor:
        """DER's term: mean squared error between the student's output, reduced
        as ``stored_output`` reduces it, and a stored one."""
        return F.mse_loss(self.stored_output(student), stored)

    # ---- evaluation ---------------------------------------------------------------
    def decode(self, output: torch.Tensor, targets: TaskTargets) -> list[Any]:
        """Per-sample predictions in original image coordinates."""
        raise NotImplementedError

    def metric(self, split: TaskSplit) -> TaskMetric:
        raise NotImplementedError

    def statistics(self, samples: dict[str, Any], split: TaskSplit) -> dict[str, Statistic]:
        """Each metric as a function of a resample of the evaluated images (indices into
        ``samples``' image order, repeats allowed): what the bootstrap intervals resample."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


def stack_field(targets: list[dict[str, Any]], key: str) -> torch.Tensor:
    return torch.stack([torch.as_tensor(t[key]).as_subclass(torch.Tensor) for t in targets])


def kl_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float, dim: int = 1) -> torch.Tensor:
    """Hinton's distillation term: KL(teacher || student) of softened
    distributions along ``dim``, averaged over the other positions, times T^2."""
    log_p_student = torch.log_softmax(student / temperature, dim=dim)
    log_p_teacher = torch.log_softmax(teacher / temperature, dim=dim)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=dim)
    return kl.mean() * temperature**2
