"""The task registry: the single list of tasks. Everything else (config
sections, head layout, data folders, CLI flags, result columns, report
metrics) loops over it; a new task registers itself with ``register_task``."""

from __future__ import annotations

from typing import Any, Mapping

from cl_bench.dataclass_io import from_dict
from cl_bench.errors import CLBenchError
from cl_bench.tasks.base import Task
from cl_bench.tasks.classification import ClassificationTask
from cl_bench.tasks.detection import DetectionTask
from cl_bench.tasks.segmentation import SegmentationTask

TASKS: dict[str, Task] = {}


def register_task(task_type: type[Task]) -> type[Task]:
    """Add a Task class to the registry (usable as a class decorator)."""
    TASKS[task_type.name] = task_type()
    return task_type


for _task_type in (SegmentationTask, DetectionTask, ClassificationTask):
    register_task(_task_type)

DEFAULT_ORDER = ("seg", "det", "cls")  # the challenge's order


def default_order() -> list[str]:
    """Every registered task, the challenge's three first."""
    return [*DEFAULT_ORDER, *(name for name in TASKS if name not in DEFAULT_ORDER)]


def task_options(values: Mapping[str, Any] | None = None, where: str = "tasks") -> dict[str, Any]:
    """Every registered task's options: the given sections (dicts are checked
    against the task's options type; options objects are kept), defaults for the rest."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(TASKS))
    if unknown:
        raise CLBenchError(f"{where}: unknown task(s) {', '.join(unknown)} (known: {', '.join(TASKS)})")
    options = {}
    for name, task in TASKS.items():
        given = values.get(name)
        if isinstance(given, task.options_type):
            options[name] = given
        else:
            options[name] = from_dict(task.options_type, given or {}, f"{where}.{name}")
    return options


def build_tasks(options: Mapping[str, Any] | None = None) -> dict[str, Task]:
    """Task objects carrying the configured loss, decoding and class options."""
    return {name: type(TASKS[name])(value) for name, value in task_options(options).items()}


def head_layout(names) -> list[str]:
    """The tasks' channel order in the head output."""
    return sorted(names, key=lambda name: TASKS[name].head_rank)


def metric_label(metric: str) -> str:
    """How tables and figures print a metric name (``mAP50`` -> ``mAP@0.5``)."""
    for task in TASKS.values():
        if metric in task.metric_labels:
            return task.metric_labels[metric]
    return metric


def reported_metrics() -> dict[str, tuple[str, str]]:
    """The metrics reports show: metric -> (task, ``primary`` or ``secondary``),
    the part of summary.json holding it."""
    return {metric: (name, "primary" if metric == task.metrics[0] else "secondary")
            for name, task in TASKS.items() for metric in task.report_metrics}


def task_order(names: list[str]) -> list[str]:
    """A configured task order as short task names; it must be a permutation of the registered tasks."""
    try:
        order = [get_task(name).name for name in names]
    except ValueError as error:
        raise CLBenchError(f"order: {error}") from None
    if sorted(order) != sorted(TASKS):
        raise CLBenchError(f"order: {','.join(names)} is not a permutation of {','.join(TASKS)}")
    return order


def get_task(name: str) -> Task:
    """A task by short or long name (``det``, ``detection``)."""
    for task in TASKS.values():
        if name.lower() in task.aliases:
            return task
    raise ValueError(f"unknown task '{name}' (known: {', '.join(TASKS)})")


def task_key(name: str, where: str) -> str:
    """The short name of a task named by its short or long name (a per-task setting's key);
    an unknown name is a CLBenchError naming ``where`` and the known ones."""
    try:
        return get_task(str(name)).name
    except ValueError:
        known = ", ".join(f"{task.name} ({task.title})" for task in TASKS.values())
        raise CLBenchError(f"{where}: unknown task '{name}' (known: {known})") from None


__all__ = ["TASKS", "DEFAULT_ORDER", "Task", "build_tasks", "default_order", "get_task", "head_layout", "task_order",
           "metric_label", "register_task", "reported_metrics", "task_key", "task_options"]
