"""Image classification on Imagenette-160."""

from __future__ import annotations

from typing import Any

import torch

from cl_bench.tasks.base import Task
from scenarios.imagenette import ImagenetteSplit


class ClassificationTask(Task):
    name = "cls"
    title = "classification"
    dataset = "Imagenette-160"
    folder_names = ("imagenette_160", "imagenette-160", "imagenette160", "imagenette")
    split_type = ImagenetteSplit

    def collate_targets(self, targets: list[dict[str, Any]]) -> dict[str, Any]:
        return {"label": torch.tensor([int(t["label"]) for t in targets], dtype=torch.int64)}
