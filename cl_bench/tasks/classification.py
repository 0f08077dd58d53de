"""Image classification on Imagenette-160: Top-1 and Top-5."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cl_bench.bootstrap import Statistic, mean_statistic
from cl_bench.dataclass_io import PROBABILITY, setting
from cl_bench.metrics import top_k_hits
from cl_bench.tasks.base import Task, TaskMetric, kl_divergence
from scenarios.imagenette import ImagenetteSplit


@dataclass
class ClsOptions:
    """Classification: cross-entropy, optional label smoothing."""

    label_smoothing: float = setting(0.0, allowed=PROBABILITY)


class ClassificationMetric(TaskMetric):
    def __init__(self):
        self.per_image: dict[int, tuple[bool, bool]] = {}  # dataset index -> (top-1 hit, top-5 hit)

    def update(self, output: torch.Tensor, targets) -> None:
        labels = targets["label"].to(output.device)
        top1, top5 = top_k_hits(output, labels, 1), top_k_hits(output, labels, 5)
        for index, hit1, hit5 in zip(targets.index.tolist(), top1.tolist(), top5.tolist()):
            self.per_image[index] = (hit1, hit5)

    def result(self) -> dict[str, float]:
        n = max(len(self.per_image), 1)
        return {"top1": sum(h for h, _ in self.per_image.values()) / n,
                "top5": sum(h for _, h in self.per_image.values()) / n}

    def samples(self) -> dict[str, Any]:
        """Whether each image's label is the top-1 and among the top-5 predictions."""
        indices = sorted(self.per_image)
        return {"index": indices, "top1": [float(self.per_image[i][0]) for i in indices],
                "top5": [float(self.per_image[i][1]) for i in indices]}


class ClassificationTask(Task):
    name = "cls"
    title = "classification"
    dataset = "Imagenette-160"
    folder_names = ("imagenette_160", "imagenette-160", "imagenette160", "imagenette")
    split_type = ImagenetteSplit
    metrics = ("top1", "top5")
    report_metrics = ("top1",)
    metric_labels = {"top1": "Top-1", "top5": "Top-5"}
    options_type = ClsOptions
    default_num_classes = 10
    head_rank = 2

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {"label": torch.tensor([int(t["label"]) for t in targets], dtype=torch.int64)}

    def view(self, raw: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """Class logits: global average pool of this task's channels."""
        return raw.mean(dim=(2, 3))

    def loss(self, output: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(output, targets["label"], label_smoothing=self.options.label_smoothing)
        return {"loss": ce, "ce": ce.detach()}

    def distillation(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        return kl_divergence(student, teacher, temperature, dim=1)

    def decode(self, output: torch.Tensor, targets) -> list[int]:
        return output.argmax(dim=1).tolist()

    def metric(self, split: ImagenetteSplit) -> ClassificationMetric:
        return ClassificationMetric()

    def statistics(self, samples: dict[str, Any], split: ImagenetteSplit) -> dict[str, Statistic]:
        """Top-1 and Top-5: means of per-image hits."""
        return {metric: mean_statistic(samples[metric]) for metric in self.metrics}
