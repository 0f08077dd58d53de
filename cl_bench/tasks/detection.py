"""Object detection on Mini-COCO-Det: COCO mAP with pycocotools."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss

from cl_bench.bootstrap import Statistic, coco_statistics
from cl_bench.dataclass_io import AT_LEAST_0, AT_LEAST_1, PROBABILITY, setting
from cl_bench.metrics import coco_map
from cl_bench.tasks import det_codec
from cl_bench.tasks.base import Task, TaskMetric
from scenarios.coco_det import CocoDetSplit, annotation_file

OBJECT_PRIOR = 0.01
SIZE_PRIOR = 0.1  # boxes start a tenth of the input wide and high (COCO objects are mostly small)
OBJECTNESS_LOSSES = ("focal", "bce")


@dataclass
class DetOptions:
    """Detection: anchor-free centre assignment on the stride-16 grid."""

    # without configured classes: the k with most boxes in the training split
    top_k_classes: int = setting(10, allowed=AT_LEAST_1)
    objectness: str = setting("focal", choices=OBJECTNESS_LOSSES)  # focal (torchvision sigmoid_focal_loss) | bce
    neighbours: bool = True  # also assign the two nearest neighbour cells
    obj_weight: float = setting(1.0, allowed=AT_LEAST_0)
    cls_weight: float = setting(1.0, allowed=AT_LEAST_0)
    giou_weight: float = setting(2.0, allowed=AT_LEAST_0)
    l1_weight: float = setting(2.0, allowed=AT_LEAST_0)
    score_threshold: float = setting(0.001, allowed=PROBABILITY)
    nms_iou: float = setting(0.6, allowed=PROBABILITY)
    max_detections: int = setting(100, allowed=AT_LEAST_1)
    pre_nms_top_k: int = setting(1000, allowed=AT_LEAST_1)


class DetectionMetric(TaskMetric):
    """COCO mAP@[.5:.95] and mAP@0.5 against the split's own annotations."""

    def __init__(self, task: DetectionTask, split: CocoDetSplit):
        self.task, self.split = task, split
        self.detections: list[dict[str, Any]] = []
        self.image_ids: list[int] = []

    def update(self, output: torch.Tensor, targets) -> None:
        for rows, index in zip(self.task.decode(output, targets), targets.index.tolist()):
            self.image_ids.append(index)
            for cx, cy, w, h, score, cls in rows.tolist():
                self.detections.append({"image_id": index, "category_id": int(cls) + 1,
                                        "bbox": [cx - w / 2, cy - h / 2, w, h], "score": score})

    def result(self) -> dict[str, float]:
        return coco_map(self.split.coco_ground_truth, self.detections, self.image_ids)

    def samples(self) -> dict[str, Any]:
        """The evaluated images and every detection (COCO result rows)."""
        return {"index": sorted(self.image_ids), "detections": list(self.detections)}


class DetectionTask(Task):
    name = "det"
    title = "detection"
    dataset = "Mini-COCO-Det"
    folder_names = ("mini_coco_det", "mini-coco-det", "minicocodet", "coco_det")
    split_type = CocoDetSplit
    metrics = ("mAP", "mAP50")
    report_metrics = ("mAP", "mAP50")
    metric_labels = {"mAP50": "mAP@0.5"}
    options_type = DetOptions
    head_rank = 0
    selects_classes = True  # the top_k_classes most frequent in train (or the configured ones)

    @property
    def default_num_classes(self) -> int:
        return self.options.top_k_classes

    def resolve_classes(self, task_root: Path, train_split: str, requested: list[str] | None) -> list[str]:
        return CocoDetSplit.resolve_classes(task_root, train_split, requested, self.options.top_k_classes)

    def split_classes(self, task_root: Path, split: str) -> list[str]:
        return CocoDetSplit.declared_classes(task_root, split)

    def classes_file(self, task_root: Path, split: str) -> Path:
        return annotation_file(task_root, split) or task_root / split

    def ignored_annotations(self, split: CocoDetSplit) -> int:
        return split.other_class

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "boxes": [t["boxes"].as_subclass(torch.Tensor) for t in targets],
            "labels": [torch.as_tensor(t["labels"], dtype=torch.int64) for t in targets],
        }

    def channels(self, num_classes: int) -> int:
        return 5 + num_classes  # cx, cy, w, h, conf, class logits

    def initial_bias(self, num_classes: int) -> torch.Tensor:
        """Objectness starts at a prior of 1 % (RetinaNet), so the focal loss
        starts small; box sizes start at a tenth of the input, not half."""
        bias = torch.zeros(self.channels(num_classes))
        bias[2:4] = math.log(SIZE_PRIOR / (1 - SIZE_PRIOR))
        bias[4] = -math.log((1 - OBJECT_PRIOR) / OBJECT_PRIOR)
        return bias

    def loss(self, output: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        opts = self.options
        height, width = targets.input_size
        target = det_codec.assign(targets["boxes"], targets["labels"], output.shape[-2:], (height, width),
                                  opts.neighbours)
        positive = target.positive
        num_pos = max(int(positive.sum()), 1)
        conf = output[:, 4]
        if opts.objectness == "focal":
            obj = sigmoid_focal_loss(conf, target.objectness, reduction="sum") / num_pos
        else:
            obj = F.binary_cross_entropy_with_logits(conf, target.objectness)
        if positive.any():
            logits = output[:, 5:].permute(0, 2, 3, 1)[positive]
            cls = F.cross_entropy(logits, target.labels[positive])
            predicted = det_codec.grid_boxes(output, (height, width))[positive]
            truth = target.boxes[positive]
            giou = generalized_box_iou_loss(predicted, truth, reduction="mean")
            scale = output.new_tensor([width, height, width, height])
            l1 = F.l1_loss(predicted / scale, truth / scale)
        else:
            cls = giou = l1 = output.sum() * 0.0
        total = opts.obj_weight * obj + opts.cls_weight * cls + opts.giou_weight * giou + opts.l1_weight * l1
        return {"loss": total, "obj": obj.detach(), "cls": cls.detach(), "giou": giou.detach(), "l1": l1.detach()}

    def distillation(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Objectness toward the teacher's, and class and box terms weighted by
        the teacher's objectness (where it sees objects)."""
        teacher_obj = teacher[:, 4].sigmoid()
        weight = teacher_obj / teacher_obj.sum().clamp(min=1e-6)
        # binary KL: cross-entropy minus the teacher's own entropy (zero when equal)
        obj = (F.binary_cross_entropy_with_logits(student[:, 4], teacher_obj)
               - F.binary_cross_entropy_with_logits(teacher[:, 4], teacher_obj))
        log_s = torch.log_softmax(student[:, 5:] / temperature, dim=1)
        log_t = torch.log_softmax(teacher[:, 5:] / temperature, dim=1)
        cls = ((log_t.exp() * (log_t - log_s)).sum(1) * weight).sum() * temperature**2
        box = ((student[:, :4].sigmoid() - teacher[:, :4].sigmoid()).abs().sum(1) * weight).sum()
        return obj + cls + box

    def detect(self, output: torch.Tensor, input_size: tuple[int, int]) -> list[torch.Tensor]:
        """Rows ``[cx, cy, w, h, score, class]`` in input pixels, per image."""
        o = self.options
        return det_codec.detect(output, input_size, o.score_threshold, o.nms_iou, o.max_detections, o.pre_nms_top_k)

    def decode(self, output: torch.Tensor, targets) -> list[torch.Tensor]:
        """Rows ``[cx, cy, w, h, score, class]`` in original image pixels."""
        height, width = targets.input_size
        mapped = []
        for rows, (orig_h, orig_w) in zip(self.detect(output, (height, width)), targets.orig_size.tolist()):
            scale = rows.new_tensor([orig_w / width, orig_h / height, orig_w / width, orig_h / height])
            mapped.append(torch.cat([rows[:, :4] * scale, rows[:, 4:]], dim=1).cpu())
        return mapped

    def metric(self, split: CocoDetSplit) -> DetectionMetric:
        return DetectionMetric(self, split)

    def statistics(self, samples: dict[str, Any], split: CocoDetSplit) -> dict[str, Statistic]:
        """COCO mAP and mAP@0.5 of the resampled images (a repeated image counts as another image)."""
        return coco_statistics(split.coco_ground_truth, samples["detections"], samples["index"], self.metrics)
