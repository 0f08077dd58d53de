"""Registry of the three tasks."""

from __future__ import annotations

from cl_bench.config import TasksConfig
from cl_bench.tasks.base import Task
from cl_bench.tasks.classification import ClassificationTask
from cl_bench.tasks.detection import DetectionTask
from cl_bench.tasks.segmentation import SegmentationTask

TASKS: dict[str, Task] = {t.name: t for t in (SegmentationTask(), DetectionTask(), ClassificationTask())}
DEFAULT_ORDER = ("seg", "det", "cls")


def build_tasks(config: TasksConfig) -> dict[str, Task]:
    """Task objects carrying the configured loss and decoding options."""
    return {name: type(task)(getattr(config, name)) for name, task in TASKS.items()}


def get_task(name: str) -> Task:
    """A task by short or long name (``det``, ``detection``)."""
    for task in TASKS.values():
        if name.lower() in task.aliases:
            return task
    raise ValueError(f"unknown task '{name}' (known: {', '.join(t.name for t in TASKS.values())})")


__all__ = ["TASKS", "DEFAULT_ORDER", "Task", "build_tasks", "get_task"]
