"""Each task learns alone on the synthetic default at 64 px within about a
minute of CPU each (the single_task strategy: every task from the same initial
weights): clearly above chance (thresholds keep a margin)."""

from __future__ import annotations

import pandas as pd
import pytest

from cl_bench.config import Config, DataConfig, RunConfig, StrategyConfig, TrainConfig
from cl_bench.experiment.runner import run_experiment

# task: (epochs, metric, threshold, chance level)
EXPECTED = {
    "seg": (40, "mIoU", 0.30, 0.13),  # all background scores about 0.13 here
    "det": (60, "mAP50", 0.15, 0.0),
    "cls": (40, "top1", 0.60, 0.10),
}


@pytest.fixture(scope="module")
def single_task_run(tmp_path_factory):
    config = Config(DataConfig(synthetic=True, image_size=64),
                    train=TrainConfig(epochs_per_task={name: e for name, (e, *_) in EXPECTED.items()}, lr=2e-3,
                                      batch_size=8),
                    strategy=StrategyConfig("single_task"),
                    run=RunConfig(out=str(tmp_path_factory.mktemp("runs")), logger="none"))
    return run_experiment(config, log=lambda _: None)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_single_task_learns_on_the_synthetic_default(single_task_run, name):
    epochs, metric, threshold, chance = EXPECTED[name]
    stage = next(t for t in single_task_run.summary["timings"] if t["task"] == name)
    assert stage["epochs"] == epochs
    matrix = pd.read_csv(single_task_run.run_dir / f"matrix_{metric}.csv", index_col=0)
    assert matrix.loc[f"after {name}", name] > threshold > chance, matrix
