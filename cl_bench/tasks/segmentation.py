"""Semantic segmentation on Mini-VOC-Seg."""

from __future__ import annotations

from typing import Any

from cl_bench.tasks.base import Task, stack_field
from scenarios.voc_seg import VocSegSplit


class SegmentationTask(Task):
    name = "seg"
    title = "segmentation"
    dataset = "Mini-VOC-Seg"
    folder_names = ("mini_voc_seg", "mini-voc-seg", "minivocseg", "voc_seg")
    split_type = VocSegSplit

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {"mask": stack_field(targets, "mask")}
