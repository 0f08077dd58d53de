"""Semantic segmentation on Mini-VOC-Seg: mIoU over the whole split."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cl_bench.bootstrap import Statistic, miou_statistic
from cl_bench.dataclass_io import AT_LEAST_1, PROBABILITY, setting
from cl_bench.metrics import confusion_matrix, iou_from_confusion
from cl_bench.tasks.base import Task, TaskMetric, kl_divergence, stack_field
from scenarios.voc_seg import IGNORE_INDEX, VocSegSplit

STORED_STRIDE = 16  # output replay keeps seg logits pooled to 1/16 of the input size


@dataclass
class SegOptions:
    """Segmentation: cross-entropy with ignore index 255.

    ``output_stride``: training sees the stride-16 logits upsampled to
    input / output_stride (1: the whole input), against masks downsampled to
    that size (nearest, 255 kept as ignore); evaluation always decodes at the
    original image resolution (bench/train_speed.py measures the speed-up).
    """

    label_smoothing: float = setting(0.0, allowed=PROBABILITY)
    output_stride: int = setting(4, allowed=AT_LEAST_1)


class SegmentationMetric(TaskMetric):
    """Confusion matrix accumulated over the split at ORIGINAL mask resolution."""

    def __init__(self, task: SegmentationTask, split: VocSegSplit):
        self.task, self.split = task, split
        self.confusion = torch.zeros(len(split.classes), len(split.classes), dtype=torch.int64)
        self.per_image: dict[int, torch.Tensor] = {}

    def update(self, output: torch.Tensor, targets) -> None:
        for pred, index in zip(self.task.decode(output, targets), targets.index.tolist()):
            truth = torch.from_numpy(self.split.read_mask(index).astype("int64"))
            confusion = confusion_matrix(pred, truth, len(self.split.classes), IGNORE_INDEX)
            self.per_image[index] = confusion
            self.confusion += confusion

    def result(self) -> dict[str, float]:
        return iou_from_confusion(self.confusion)

    def samples(self) -> dict[str, Any]:
        """Each image's confusion matrix."""
        indices = sorted(self.per_image)
        return {"index": indices, "confusion": torch.stack([self.per_image[i] for i in indices])}


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
        """Class logits upsampled to the input size / ``output_stride``."""
        stride = self.options.output_stride
        size = (max(input_size[0] // stride, 1), max(input_size[1] // stride, 1))
        return F.interpolate(raw, size=size, mode="bilinear", align_corners=False)

    def loss(self, output: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        mask = targets["mask"]
        if mask.shape[-2:] != output.shape[-2:]:  # nearest keeps class indices and the ignore value
            mask = F.interpolate(mask[:, None].float(), size=output.shape[-2:], mode="nearest")[:, 0].long()
        ce = F.cross_entropy(output, mask, ignore_index=IGNORE_INDEX, label_smoothing=self.options.label_smoothing)
        if torch.isnan(ce):  # every pixel ignored
            ce = output.sum() * 0.0
        return {"loss": ce, "ce": ce.detach()}

    def distillation(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Per-pixel KL between softened class distributions."""
        return kl_divergence(student, teacher, temperature, dim=1)

    def stored_output(self, output: torch.Tensor) -> torch.Tensor:
        """Class logits average-pooled over 16 x 16 input pixels: the head's own stride-16 grid
        (32 x 32 at 512 px, 84 KB per image with 21 classes, against 22 MB at full size). The
        output is at input / ``output_stride``, so that is a pool over 16 / output_stride of its pixels."""
        stride = max(STORED_STRIDE // self.options.output_stride, 1)
        height, width = output.shape[-2:]
        return F.adaptive_avg_pool2d(output, (math.ceil(height / stride), math.ceil(width / stride)))

    def decode(self, output: torch.Tensor, targets) -> list[torch.Tensor]:
        """Per-image class maps at the original image size."""
        maps = []
        for logits, (h, w) in zip(output, targets.orig_size.tolist()):
            logits = F.interpolate(logits[None].float(), size=(h, w), mode="bilinear", align_corners=False)
            maps.append(logits[0].argmax(0).cpu())
        return maps

    def metric(self, split: VocSegSplit) -> SegmentationMetric:
        return SegmentationMetric(self, split)

    def statistics(self, samples: dict[str, Any], split: VocSegSplit) -> dict[str, Statistic]:
        """mIoU and pixel accuracy of the summed confusion matrices of the resampled images."""
        return {metric: miou_statistic(samples["confusion"], metric) for metric in self.metrics}
