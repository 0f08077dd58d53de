"""Evaluate the unified model on a task's split (in process and in eval.py alike)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from cl_bench.tasks import Task
from scenarios.common import TaskSplit

EVAL_BATCH_SIZE = 16


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
