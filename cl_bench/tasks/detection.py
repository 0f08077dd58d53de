"""Object detection on Mini-COCO-Det."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cl_bench.config import DataConfig
from cl_bench.tasks.base import Task
from scenarios.coco_det import CocoDetSplit


class DetectionTask(Task):
    name = "det"
    title = "detection"
    dataset = "Mini-COCO-Det"
    folder_names = ("mini_coco_det", "mini-coco-det", "minicocodet", "coco_det")
    split_type = CocoDetSplit

    def resolve_classes(self, task_root: Path, data: DataConfig) -> list[str]:
        return CocoDetSplit.resolve_classes(task_root, data.train_split, data.classes.get(self.name), data.det_top_k)

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "boxes": [t["boxes"].as_subclass(torch.Tensor) for t in targets],
            "labels": [torch.as_tensor(t["labels"], dtype=torch.int64) for t in targets],
        }
