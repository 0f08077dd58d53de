"""Per-task evaluation through Avalanche's EvaluationPlugin.

Avalanche's built-in accuracy and forgetting metrics assume classification
outputs; this PluginMetric asks each evaluated experience's Task for its
metric (mIoU, COCO mAP, Top-1 ...), emits the values to the loggers and keeps
tidy records (train_exp, eval_task, metric, value) for the result matrices.
"""

from __future__ import annotations

from typing import Any

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from cl_bench.tasks import Task
from cl_bench.tasks.base import TaskMetric
from scenarios.common import TaskSplit


class MultiTaskEvalMetric(PluginMetric[dict]):
    """``train_exp`` is set by the runner before each evaluation: the row of
    the accuracy matrix the values belong to."""

    def __init__(self, tasks: dict[str, Task], splits: dict[str, TaskSplit], task_of_experience):
        super().__init__()
        self.tasks, self.splits = tasks, splits
        self.task_of_experience = task_of_experience
        self.train_exp = 0
        self.records: list[dict[str, Any]] = []
        self._task: str | None = None
        self._metric: TaskMetric | None = None
        self._last: dict[str, float] = {}

    def reset(self) -> None:
        self._metric = None
        self._last = {}

    def result(self) -> dict[str, float]:
        return dict(self._last)

    def before_eval_exp(self, strategy, **kwargs):
        self._task = self.task_of_experience(strategy.experience)
        self._metric = self.tasks[self._task].metric(self.splits[self._task])

    def after_eval_iteration(self, strategy, **kwargs):
        rows = strategy.mb_y[self._task]
        self._metric.update(strategy.mb_output[self._task][rows.rows], rows)

    def after_eval_exp(self, strategy, **kwargs) -> list[MetricValue]:
        self._last = self._metric.result()
        values = []
        for name, value in self._last.items():
            self.records.append({"train_exp": self.train_exp, "eval_task": self._task, "metric": name,
                                 "value": float(value)})
            values.append(MetricValue(self, f"{name}/eval_phase/test_stream/{self._task}", value, self.train_exp))
        return values

    def __str__(self) -> str:
        return "MultiTaskEvalMetric"
