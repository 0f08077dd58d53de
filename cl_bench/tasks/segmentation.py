"""Semantic segmentation on Mini-VOC-Seg: mIoU over the whole split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cl_bench.dataclass_io import PROBABILITY, setting
from cl_bench.metrics import confusion_matrix, iou_from_confusion
from cl_bench.tasks.base import Task, TaskMetric, kl_divergence, stack_field
from scenarios.voc_seg import IGNORE_INDEX, VocSegSplit


@dataclass
class SegOptions:
    """Segmentation: cross-entropy with ignore index 255."""

    label_smoothing: float = setting(0.0, allowed=PROBABILITY)


class SegmentationMetric(TaskMetric):
    """Confusion matrix accumulated over the split at ORIGINAL mask resolution."""

    def __init__(self, task: SegmentationTask, split: VocSegSplit):
        self.task, self.split = task, split
        self.confusion = torch.zeros(len(split.classes), len(split.classes), dtype=torch.int64)

    def update(self, output: torch.Tensor, targets) -> None:
        for pred, index in zip(self.task.decode(output, targets), targets.index.tolist()):
            truth = torch.from_numpy(self.split.read_mask(index).astype("int64"))
            self.confusion += confusion_matrix(pred, truth, len(self.split.classes), IGNORE_INDEX)

    def result(self) -> dict[str, float]:
        return iou_from_confusion(self.confusion)


class SegmentationTask(Task):
    name = "seg"
    title = "segmentation"
    dataset = "Mini-VOC-Seg"
    folder_names = ("mini_voc_seg", "mini-voc-seg", "minivocseg", "voc_seg")
    split_type = VocSegSplit
    metrics = ("mIoU", "pixel_acc")
    report_metrics = ("mIoU",)
    metric_labels = {"pixel_acc": "pixel acc"}
    options_type = SegOptions
    default_num_classes = 21
    head_rank = 1

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {"mask": stack_field(targets, "mask")}

    def view(self, raw: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
        """Class logits upsampled to the input size."""
        return F.interpolate(raw, size=input_size, mode="bilinear", align_corners=False)

    def loss(self, output: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(output, targets["mask"], ignore_index=IGNORE_INDEX,
                             label_smoothing=self.options.label_smoothing)
        if torch.isnan(ce):  # every pixel ignored
            ce = output.sum() * 0.0
        return {"loss": ce, "ce": ce.detach()}

    def distillation(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Per-pixel KL between softened class distributions."""
        return kl_divergence(student, teacher, temperature, dim=1)

    def decode(self, output: torch.Tensor, targets) -> list[torch.Tensor]:
        """Per-image class maps at the original image size."""
        maps = []
        for logits, (h, w) in zip(output, targets.orig_size.tolist()):
            logits = F.interpolate(logits[None].float(), size=(h, w), mode="bilinear", align_corners=False)
            maps.append(logits[0].argmax(0).cpu())
        return maps

    def metric(self, split: VocSegSplit) -> SegmentationMetric:
        return SegmentationMetric(self, split)
