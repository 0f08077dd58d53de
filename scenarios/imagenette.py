"""Imagenette-160 reader: SPLIT/<class>/image files, class = wnid or readable name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from torchvision import tv_tensors

from cl_bench.errors import DataError
from scenarios.common import SplitReport, TaskSplit, is_image_file, list_subdirs, missing_split

IMAGENETTE_CLASSES = {
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}


def _normalise(name: str) -> str:
    return name.lower().replace("_", " ").replace("-", " ").strip()


_BY_NAME = {_normalise(n): n for n in IMAGENETTE_CLASSES.values()}


def readable(folder: str) -> str:
    """The class name of a folder: wnids and spelling variants map to Imagenette names."""
    return IMAGENETTE_CLASSES.get(folder) or _BY_NAME.get(_normalise(folder), folder)


class ImagenetteSplit(TaskSplit):
    """Images from class folders; the target is the class index."""

    task = "cls"

    def __init__(self, task_root: Path, split: str, classes: list[str]):
        super().__init__(task_root, split, classes)
        split_dir = self.task_root / split
        if not split_dir.is_dir():
            raise missing_split(self.task_root, split, self.splits(self.task_root))
        index = {name: i for i, name in enumerate(self.classes)}
        self.items: list[tuple[Path, int]] = []
        folders = list_subdirs(split_dir)
        if not folders:
            raise DataError.at(split_dir, "empty split: no class folders")
        for folder in folders:
            name = readable(folder.name)
            if name not in index:
                raise DataError.at(folder, f"class '{name}' is not one of the training classes")
            files = sorted(p for p in folder.iterdir() if is_image_file(p))
            if not files:
                raise DataError.at(folder, "empty class folder: no images")
            self.items.extend((p, index[name]) for p in files)

    @staticmethod
    def splits(task_root: Path) -> list[str]:
        return [p.name for p in list_subdirs(task_root)]

    @staticmethod
    def resolve_classes(task_root: Path, train_split: str, requested: list[str] | None) -> list[str]:
        """Imagenette's 10 classes in wnid order when the folders are Imagenette's,
        else the sorted folder names of the training split (or the configured list)."""
        split_dir = task_root / train_split
        if not split_dir.is_dir():
            raise missing_split(task_root, train_split, ImagenetteSplit.splits(task_root))
        found = [readable(p.name) for p in list_subdirs(split_dir)]
        if requested:
            for name in requested:
                if name not in found:
                    raise DataError.at(split_dir, f"configured class '{name}' has no folder")
            for name in found:
                if name not in requested:
                    raise DataError.at(split_dir / name, f"class folder '{name}' is not in the configured classes")
            return list(requested)
        if found and all(name in _BY_NAME.values() for name in found):
            return list(IMAGENETTE_CLASSES.values())
        return sorted(found)

    def __len__(self) -> int:
        return len(self.items)

    def source(self, index: int) -> Path:
        return self.items[index][0]

    def load_target(self, index: int, image: tv_tensors.Image) -> dict[str, Any]:
        return {"label": self.items[index][1]}

    def report(self) -> SplitReport:
        counts = Counter(self.classes[label] for _, label in self.items)
        return SplitReport(
            images=len(self),
            classes=len(self.classes),
            stats={"images per class": {name: counts.get(name, 0) for name in self.classes}},
            warnings=list(self.warnings),
        )
