"""Mini-VOC-Seg reader: 21 classes (0 = background), 255 = ignore.

Layouts, detected per split:
  (a) flat pairs      SPLIT/NAME.jpg + SPLIT/NAME.png
  (b) VOC             JPEGImages/, SegmentationClass/, ImageSets/Segmentation/SPLIT.txt
  (c) two folders     SPLIT/images/ + SPLIT/masks/
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from cl_bench.errors import DataError
from scenarios.common import (
    SplitReport,
    TaskSplit,
    as_index_array,
    is_image_file,
    list_subdirs,
    missing_split,
    open_pil,
)

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
    "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
IGNORE_INDEX = 255
VOC_LISTS = Path("ImageSets") / "Segmentation"


def _pairs_by_stem(image_dir: Path, mask_dir: Path, same_folder: bool) -> list[tuple[Path, Path]]:
    masks = {p.stem: p for p in mask_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png"}
    images = {
        p.stem: p
        for p in image_dir.iterdir()
        if is_image_file(p) and not (same_folder and p.suffix.lower() == ".png")
    }
    for stem, image in sorted(images.items()):
        if stem not in masks:
            raise DataError.at(image, f"no mask {stem}.png in {mask_dir}")
    for stem, mask in sorted(masks.items()):
        if stem not in images:
            raise DataError.at(mask, "mask without an image of the same name")
    return [(images[s], masks[s]) for s in sorted(images)]


def _voc_list(task_root: Path, split: str) -> list[str]:
    path = task_root / VOC_LISTS / f"{split}.txt"
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


class VocSegSplit(TaskSplit):
    """Image/mask pairs of one split; masks load as class-index tv_tensors.Mask."""

    task = "seg"

    def __init__(self, task_root: Path, split: str, classes: list[str]):
        super().__init__(task_root, split, classes)
        self.layout, self.pairs = self._find_pairs()
        if not self.pairs:
            raise DataError.at(self.task_root / split, "empty split: no image/mask pairs")

    @staticmethod
    def splits(task_root: Path) -> list[str]:
        lists = task_root / VOC_LISTS
        if lists.is_dir() and (task_root / "JPEGImages").is_dir():
            return sorted(p.stem for p in lists.glob("*.txt") if p.stem != "trainval")
        return [p.name for p in list_subdirs(task_root)]

    @staticmethod
    def resolve_classes(task_root: Path, train_split: str, requested: list[str] | None) -> list[str]:
        if requested and list(requested) != list(VOC_CLASSES):
            raise DataError.at(task_root, "segmentation classes are the 21 VOC classes and cannot be changed")
        return list(VOC_CLASSES)

    def _find_pairs(self) -> tuple[str, list[tuple[Path, Path]]]:
        root, split = self.task_root, self.split
        split_dir = root / split
        if (root / VOC_LISTS / f"{split}.txt").is_file():
            names = _voc_list(root, split)
            self._warn_overlaps(names)
            pairs = []
            for name in dict.fromkeys(names):
                image = root / "JPEGImages" / f"{name}.jpg"
                mask = root / "SegmentationClass" / f"{name}.png"
                for path in (image, mask):
                    if not path.is_file():
                        raise DataError.at(path, f"listed in {VOC_LISTS / (split + '.txt')} but missing")
                pairs.append((image, mask))
            return "voc", pairs
        if (split_dir / "images").is_dir() and (split_dir / "masks").is_dir():
            return "images+masks", _pairs_by_stem(split_dir / "images", split_dir / "masks", False)
        if split_dir.is_dir():
            return "flat", _pairs_by_stem(split_dir, split_dir, True)
        raise missing_split(root, split, self.splits(root))

    def _warn_overlaps(self, names: list[str]) -> None:
        mine = set(names)
        for other in self.splits(self.task_root):
            if other == self.split:
                continue
            shared = mine & set(_voc_list(self.task_root, other))
            if shared:
                self.warnings.append(f"{len(shared)} images of '{self.split}' are also listed in '{other}'")

    def __len__(self) -> int:
        return len(self.pairs)

    def source(self, index: int) -> Path:
        return self.pairs[index][0]

    def read_mask(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """The mask as class indices, validated (values and, if given, size H, W)."""
        path = self.pairs[index][1]
        mask = as_index_array(open_pil(path), path)
        if size is not None and mask.shape != tuple(size):
            raise DataError.at(
                path, f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is {size[1]}x{size[0]}"
            )
        outside = (mask >= len(self.classes)) & (mask != IGNORE_INDEX)
        if outside.any():
            bad = np.unique(mask[outside])
            raise DataError.at(
                path, f"mask values {bad.tolist()[:5]} outside 0..{len(self.classes) - 1} and {IGNORE_INDEX}"
            )
        return mask

    def load_target(self, index: int, image: tv_tensors.Image) -> dict[str, Any]:
        mask = self.read_mask(index, tuple(image.shape[-2:]))
        return {"mask": tv_tensors.Mask(torch.from_numpy(mask.astype(np.int64)))}

    def report(self) -> SplitReport:
        histogram: Counter[int] = Counter()
        for index in range(len(self)):
            values, counts = np.unique(self.read_mask(index), return_counts=True)
            histogram.update(dict(zip(values.tolist(), counts.tolist())))
        total = sum(histogram.values()) or 1
        present = sorted(v for v in histogram if v != IGNORE_INDEX)
        return SplitReport(
            images=len(self),
            classes=len(self.classes),
            stats={
                "layout": self.layout,
                "classes present": len(present),
                "mask values (% pixels)": {
                    (self.classes[v] if v < len(self.classes) else f"{v} (ignore)"): round(100 * c / total, 2)
                    for v, c in sorted(histogram.items())
                },
            },
            warnings=list(self.warnings),
        )
