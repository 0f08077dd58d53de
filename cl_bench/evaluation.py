"""Evaluation of the unified model, in one place: the Avalanche PluginMetric
that evaluates every experience during a run, and the loop that evaluates a
task's split outside a run (eval.py).

Avalanche's built-in accuracy and forgetting metrics assume classification
outputs; the PluginMetric asks each evaluated experience's Task for its
metric (mIoU, COCO mAP, Top-1 ...), emits the values to the loggers and keeps
tidy records (train_exp, eval_task, metric, value) for the result matrices.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from torch import nn
from torch.utils.data import DataLoader

from cl_bench.errors import CLBenchError
from cl_bench.tasks import Task
from cl_bench.tasks.base import TaskMetric
from scenarios.common import TaskSplit

EVAL_BATCH_SIZE = 16


class MultiTaskEvalMetric(PluginMetric[dict]):
    """Evaluates each experience with its task's metric (experiences carry
    ``task_name``). Values are recorded under ``train_exp``, the number of the
    last trained stage: the row of the accuracy matrix they belong to."""

    def __init__(self, tasks: dict[str, Task], splits: dict[str, TaskSplit]):
        super().__init__()
        self.tasks, self.splits = tasks, splits
        self.trained = 0  # training stages completed
        self.records: list[dict[str, Any]] = []
        self.samples: dict[str, dict[str, Any]] = {}  # "<train_exp>/<task>" -> the TaskMetric's per-image samples
        self._task: str | None = None
        self._metric: TaskMetric | None = None
        self._last: dict[str, float] = {}

    def reset(self) -> None:
        self._metric = None
        self._last = {}

    def result(self) -> dict[str, float]:
        return dict(self._last)

    @property
    def train_exp(self) -> int:
        return self.trained - 1

    def after_training_exp(self, strategy, **kwargs):
        self.trained += 1

    def before_eval_exp(self, strategy, **kwargs):
        self._task = strategy.experience.task_name
        self._metric = self.tasks[self._task].metric(self.splits[self._task])

    def after_eval_iteration(self, strategy, **kwargs):
        rows = strategy.mb_y[self._task]
        output = strategy.mb_output[self._task][rows.rows]
        if not torch.isfinite(output).all():  # a metric of NaN outputs (argmax 0) looks plausible
            raise CLBenchError(f"non-finite model output evaluating {self._task} after stage {self.train_exp + 1}: "
                               f"the model diverged; no result written")
        self._metric.update(output, rows)

    def after_eval_exp(self, strategy, **kwargs) -> list[MetricValue]:
        self._last = self._metric.result()
        self.samples[f"{self.train_exp}/{self._task}"] = self._metric.samples()
        values = []
        for name, value in self._last.items():
            self.records.append({"train_exp": self.train_exp, "eval_task": self._task, "metric": name,
                                 "value": float(value)})
            values.append(MetricValue(self, f"{name}/eval_phase/test_stream/{self._task}", value, self.train_exp))
        return values

    def state_dict(self) -> dict[str, Any]:
        return {"trained": self.trained, "records": list(self.records), "samples": dict(self.samples)}

    def load_state_dict(self, state: dict[str, Any], context=None) -> None:
        self.trained = int(state["trained"])
        self.records = list(state["records"])
        self.samples = dict(state["samples"])

    def samples_after(self, stage: int, task: str) -> dict[str, Any] | None:
        """The per-image samples of ``task``'s evaluation after training stage ``stage``."""
        return self.samples.get(f"{stage}/{task}")

    def __str__(self) -> str:
        return "MultiTaskEvalMetric"


@torch.no_grad()
def evaluate_task(model: nn.Module, task: Task, dataset, split: TaskSplit, device: torch.device | str = "cpu",
                  batch_size: int = EVAL_BATCH_SIZE, num_workers: int = 0) -> dict[str, float]:
    """The task's metrics over every sample of ``dataset`` (an evaluation view of ``split``)."""
    was_training = model.training
    model.eval()
    metric = task.metric(split)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collate_fn,
                        num_workers=num_workers)
    for images, targets, *_ in loader:
        outputs = model(images.to(device))
        rows = targets[task.name]
        metric.update(outputs[task.name][rows.rows.to(device)], rows)
    model.train(was_training)
    return metric.result()
