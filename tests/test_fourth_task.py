"""A fourth task declared in this file alone: a 2-class colour classification
on synthetic images, registered with ``register_task``. `naive` runs it end to
end with the three challenge tasks (config section, head layout, data folder,
evaluation, result matrices, runs.csv, report, weights file) while nothing
under cl_bench/, scenarios/ or strategies/ names it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cl_bench import tasks as task_registry
from cl_bench.bootstrap import Statistic, mean_statistic
from cl_bench.config import Config, DataConfig, RunConfig, StrategyConfig, TrainConfig
from cl_bench.experiment.runner import run_experiment
from cl_bench.model.weights_file import load_weights
from cl_bench.report.build import build_report
from cl_bench.tasks.base import Task, TaskMetric, kl_divergence
from scenarios.common import SplitReport, TaskSplit

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


@dataclass
class ColourOptions:
    label_smoothing: float = 0.0


class ColourSplit(TaskSplit):
    """``<root>/<split>/<colour>/*.png``: the target is the colour's index."""

    task = "colour"

    def __init__(self, task_root: Path, split: str, classes: list[str]):
        super().__init__(task_root, split, classes)
        self.items = [(path, i) for i, name in enumerate(self.classes)
                      for path in sorted((self.task_root / split / name).glob("*.png"))]

    @staticmethod
    def splits(task_root: Path) -> list[str]:
        return sorted(p.name for p in task_root.iterdir() if p.is_dir())

    @staticmethod
    def resolve_classes(task_root: Path, train_split: str, requested: list[str] | None) -> list[str]:
        return list(requested or COLOURS)

    def __len__(self) -> int:
        return len(self.items)

    def source(self, index: int) -> Path:
        return self.items[index][0]

    def load_target(self, index: int, image) -> dict[str, Any]:
        return {"label": self.items[index][1]}

    def report(self) -> SplitReport:
        return SplitReport(images=len(self), classes=len(self.classes))


class ColourMetric(TaskMetric):
    def __init__(self):
        self.hits: dict[int, float] = {}

    def update(self, output: torch.Tensor, targets) -> None:
        hits = (output.argmax(1) == targets["label"].to(output.device)).tolist()
        self.hits.update(zip(targets.index.tolist(), map(float, hits)))

    def result(self) -> dict[str, float]:
        accuracy = sum(self.hits.values()) / max(len(self.hits), 1)
        return {"accuracy": accuracy, "error": 1.0 - accuracy}

    def samples(self) -> dict[str, Any]:
        index = sorted(self.hits)
        return {"index": index, "accuracy": [self.hits[i] for i in index],
                "error": [1.0 - self.hits[i] for i in index]}


class ColourTask(Task):
    name = "colour"
    title = "colour"
    dataset = "Toy colours"
    folder_names = ("colours",)
    split_type = ColourSplit
    metrics = ("accuracy", "error")
    report_metrics = ("accuracy",)
    options_type = ColourOptions
    default_num_classes = 2

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {"label": torch.tensor([int(t["label"]) for t in targets], dtype=torch.int64)}

    def view(self, raw: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        return raw.mean(dim=(2, 3))

    def loss(self, output: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(output, targets["label"], label_smoothing=self.options.label_smoothing)
        return {"loss": ce, "ce": ce.detach()}

    def distillation(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        return kl_divergence(student, teacher, temperature)

    def decode(self, output: torch.Tensor, targets) -> list[int]:
        return output.argmax(dim=1).tolist()

    def metric(self, split: ColourSplit) -> ColourMetric:
        return ColourMetric()

    def statistics(self, samples: dict[str, Any], split: ColourSplit) -> dict[str, Statistic]:
        return {metric: mean_statistic(samples[metric]) for metric in self.metrics}


def write_colours(root: Path, per_class: dict[str, int]) -> None:
    for split, count in per_class.items():
        for name, rgb in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                shade = tuple(max(0, min(255, c + 7 * i - 20)) for c in rgb)
                Image.new("RGB", (48 + 4 * i, 40), shade).save(folder / f"{i}.png")


@pytest.fixture
def colour_task(monkeypatch):
    """The registry with the colour task added for this test only."""
    monkeypatch.setitem(task_registry.TASKS, "colour", ColourTask())
    return task_registry.TASKS["colour"]


def test_a_fourth_task_runs_naive_end_to_end(colour_task, synthetic_root, tmp_path):
    data_root = tmp_path / "data"
    shutil.copytree(synthetic_root, data_root)
    write_colours(data_root / "colours", {"train": 8, "val": 4})
    order = ["seg", "det", "cls", "colour"]
    config = Config(DataConfig(root=str(data_root), image_size=64, order=order),
                    train=TrainConfig(epochs=1, epochs_per_task={"colour": 2}, batch_size=8),
                    strategy=StrategyConfig("naive"), run=RunConfig(out=str(tmp_path / "results"), logger="none"))
    assert isinstance(config.tasks["colour"], ColourOptions)

    outcome = run_experiment(config, log=lambda _: None)

    assert list(outcome.summary["tasks"]) == order
    accuracy = pd.read_csv(outcome.run_dir / "matrix_accuracy.csv", index_col=0)
    assert list(accuracy.index) == [f"after {name}" for name in order]
    assert accuracy["colour"].between(0, 1).all()  # evaluated after every stage
    runs = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert runs.loc[0, "final_accuracy"] == pytest.approx(outcome.summary["tasks"]["colour"]["final"])
    assert "drop_rel_pct_colour" in runs.columns
    low, high = outcome.summary["intervals"]["tasks"]["colour"]["accuracy"]["final"]
    assert low <= outcome.summary["tasks"]["colour"]["final"] <= high

    loaded = load_weights(outcome.run_dir / "model.pt")
    assert list(loaded.model.classes) == ["det", "seg", "cls", "colour"]  # the head layout: new tasks last
    assert loaded.model.classes["colour"] == list(COLOURS)

    build_report(tmp_path / "results", tmp_path / "report", None)
    final = (tmp_path / "report" / "tables" / "final.md").read_text()
    assert "accuracy (colour)" in final
