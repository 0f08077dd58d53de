"""Each task learns alone on the synthetic default at 64 px within about a
minute of CPU: clearly above chance (thresholds keep a margin)."""

from __future__ import annotations

import pytest
import torch

from cl_bench.config import Config, DataConfig
from cl_bench.model import build_model
from cl_bench.single_task import train_single_task
from cl_bench.tasks import build_tasks
from scenarios.benchmark import build_benchmark

# task: (epochs, metric, threshold, chance level)
EXPECTED = {
    "seg": (40, "mIoU", 0.30, 0.13),  # all background scores about 0.13 here
    "det": (60, "mAP50", 0.15, 0.0),
    "cls": (40, "top1", 0.60, 0.10),
}


@pytest.fixture(scope="module")
def synthetic_benchmark():
    return build_benchmark(Config(DataConfig(synthetic=True, image_size=64)))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_single_task_learns_on_the_synthetic_default(synthetic_benchmark, name):
    epochs, metric, threshold, chance = EXPECTED[name]
    config = Config()
    tasks = build_tasks(config.tasks)
    torch.manual_seed(0)
    model = build_model(config.model, synthetic_benchmark.classes, tasks)
    result = train_single_task(model, synthetic_benchmark, tasks[name], epochs=epochs, lr=2e-3, batch_size=8, seed=0)
    assert result.epochs == epochs
    assert result.metrics[metric] > threshold > chance, result.metrics
