"""Run schedules: which training stages a strategy runs over the task order,
and how each task's base and final values are read from the result matrix.

``sequential`` is continual learning (one stage per task, in order); ``joint``
(one stage on every task at once) and ``single_task`` (each task alone from the
same initial weights) are references, with base = final by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cl_bench.errors import CLBenchError


@dataclass
class Stage:
    """One training call: the experience, its name (the task it trains, or
    ``seg+det+cls``), the experiences evaluated after it, whether the model
    restarts from its initial weights first, and the tasks it trains (its name's
    task when not given)."""

    experience: Any
    name: str
    evaluate: list[Any]
    reset_model: bool = False
    tasks: tuple[str, ...] = ()

    def epochs(self, epochs_of: Callable[[str], int]) -> int:
        """Epochs of this stage, given each task's epochs (``train.epochs_per_task`` or ``train.epochs``).

        A stage of several tasks (joint) trains the mean of theirs over their union: as many
        image passes as training them one after the other when their training sets are of one size."""
        tasks = self.tasks or (self.name,)
        return max(1, round(sum(epochs_of(task) for task in tasks) / len(tasks)))


class Schedule:
    """A run schedule. Experiences carry their task name (``task_name``)."""

    name: str
    reference: bool  # not continual: no forgetting to measure, never selected as the best run

    def stage_names(self, order: list[str]) -> list[str]:
        """The trained stages (rows of the result matrices)."""
        return list(order)

    def stages(self, train: list[Any], test: list[Any], order: list[str]) -> list[Stage]:
        return [Stage(e, order[i], test) for i, e in enumerate(train)]

    def base_final_rows(self, j: int, rows: int) -> tuple[int, int]:
        """The rows (stages) holding task j's value right after it was learned, and its final value."""
        raise NotImplementedError

    def base_final(self, values: np.ndarray, j: int) -> tuple[float, float]:
        """Task j's base and final values in the result matrix ``values``."""
        base, final = self.base_final_rows(j, values.shape[0])
        return values[base, j], values[final, j]

    def __repr__(self) -> str:
        return f"<Schedule {self.name}>"


class Sequential(Schedule):
    name, reference = "sequential", False

    def base_final_rows(self, j: int, rows: int) -> tuple[int, int]:
        return j, rows - 1


class Joint(Schedule):
    name, reference = "joint", True

    def stage_names(self, order: list[str]) -> list[str]:
        return ["+".join(order)]

    def stages(self, train: list[Any], test: list[Any], order: list[str]) -> list[Stage]:
        # imported here: the CLI reads schedules, and Avalanche takes seconds to import
        from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
        from avalanche.benchmarks.scenarios.task_aware import with_task_labels
        from avalanche.benchmarks.utils import concat_datasets

        everything = concat_datasets([e.dataset for e in train])
        joint = with_task_labels(benchmark_from_datasets(train=[everything])).train_stream[0]
        joint.task_name = "+".join(order)
        return [Stage(joint, joint.task_name, test, tasks=tuple(order))]

    def base_final_rows(self, j: int, rows: int) -> tuple[int, int]:
        return 0, 0


class SingleTask(Schedule):
    name, reference = "single_task", True

    def stages(self, train: list[Any], test: list[Any], order: list[str]) -> list[Stage]:
        return [Stage(e, order[i], [test[i]], reset_model=True) for i, e in enumerate(train)]

    def base_final_rows(self, j: int, rows: int) -> tuple[int, int]:
        return j, j


SCHEDULES: dict[str, Schedule] = {s.name: s for s in (Sequential(), Joint(), SingleTask())}
SEQUENTIAL, JOINT, SINGLE_TASK = SCHEDULES["sequential"], SCHEDULES["joint"], SCHEDULES["single_task"]


def get_schedule(schedule: str | Schedule) -> Schedule:
    """A schedule by name (or the schedule itself)."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule not in SCHEDULES:
        raise CLBenchError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    return SCHEDULES[schedule]
