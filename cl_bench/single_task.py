"""Train the unified model on one task alone: the per-task reference and a
check that each task learns (plain PyTorch loop, no continual-learning machinery)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from cl_bench.evaluation import evaluate_task
from cl_bench.tasks import Task
from cl_bench.training.schedule import parameter_groups
from scenarios.benchmark import TaskIncrementalBenchmark


@dataclass
class SingleTaskResult:
    metrics: dict[str, float]
    epochs: int
    seconds_per_epoch: float
    final_loss: float


def train_single_task(model: nn.Module, benchmark: TaskIncrementalBenchmark, task: Task, epochs: int,
                      lr: float = 1e-3, batch_size: int = 16, device: str = "cpu", num_workers: int = 0,
                      max_seconds: float | None = None, seed: int = 0,
                      backbone_lr_scale: float = 1.0) -> SingleTaskResult:
    """Train ``model`` on ``task``'s training split (AdamW, cosine schedule; the
    backbone at ``backbone_lr_scale`` times ``lr``), then evaluate on its test
    split. ``max_seconds`` stops early after a whole epoch."""
    torch.manual_seed(seed)
    label = benchmark.tasks.index(task.name)
    train_data = benchmark.train_stream[label].dataset.train()
    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, collate_fn=train_data.collate_fn,
                        num_workers=num_workers, drop_last=len(train_data) > batch_size,
                        generator=torch.Generator().manual_seed(seed))
    model.to(device).train()
    groups = parameter_groups(model, backbone_lr_scale)
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs * len(loader), 1))
    start, done, loss_value = time.perf_counter(), 0, float("nan")
    for _ in range(epochs):
        for images, targets, _ in loader:
            outputs = model(images.to(device))
            rows = targets[task.name].to(device)
            loss = task.loss(outputs[task.name][rows.rows], rows)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_value = loss.item()
        done += 1
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    elapsed = time.perf_counter() - start
    test = benchmark.test_stream[label].dataset
    metrics = evaluate_task(model, task, test, benchmark.splits["test"][task.name], device)
    return SingleTaskResult(metrics, done, elapsed / max(done, 1), loss_value)
