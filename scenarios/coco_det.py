"""Mini-COCO-Det reader.

Layouts, detected per split:
  (a) SPLIT/labels.json with images in SPLIT/data/ or SPLIT/
  (b) annotations/instances_SPLIT.json (or instances_SPLIT2017.json) with images in SPLIT/
  (c) SPLIT/_annotations.coco.json (Roboflow export) with images in SPLIT/

Category ids are arbitrary and may differ between splits, so categories are
matched by NAME to one contiguous class list shared by all splits: a given list,
or the K most frequent (non-crowd) categories of the training split.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torchvision import tv_tensors

from cl_bench.errors import DataError
from scenarios.common import SplitReport, TaskSplit, list_subdirs, missing_split

REQUIRED_KEYS = ("images", "annotations", "categories")


def annotation_file(task_root: Path, split: str) -> Path | None:
    for candidate in (
        task_root / split / "labels.json",
        task_root / "annotations" / f"instances_{split}.json",
        task_root / "annotations" / f"instances_{split}2017.json",
        task_root / split / "_annotations.coco.json",
    ):
        if candidate.is_file():
            return candidate
    return None


def read_coco_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError.at(path, f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except UnicodeDecodeError:
        raise DataError.at(path, "not valid JSON (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise DataError.at(path, "not a COCO annotation file (top level is not an object)")
    missing = [key for key in REQUIRED_KEYS if not isinstance(data.get(key), list)]
    if missing:
        raise DataError.at(path, f"COCO JSON without {', '.join(repr(k) for k in missing)} list")
    return data


def category_names(data: dict[str, Any], path: Path) -> dict[int, str]:
    try:
        return {int(c["id"]): str(c["name"]) for c in data["categories"]}
    except (KeyError, TypeError, ValueError):
        raise DataError.at(path, "a category lacks an integer 'id' or a 'name'") from None


@dataclass(frozen=True)
class Box:
    """One annotation in original pixel coordinates, xywh as COCO stores it."""

    xywh: tuple[float, float, float, float]
    label: int
    area: float
    iscrowd: bool


class CocoDetSplit(TaskSplit):
    """Images with boxes of the chosen classes; targets are tv_tensors.BoundingBoxes (XYXY)."""

    task = "det"

    def __init__(self, task_root: Path, split: str, classes: list[str]):
        super().__init__(task_root, split, classes)
        path = annotation_file(self.task_root, split)
        if path is None:
            if not (self.task_root / split).is_dir():
                raise missing_split(self.task_root, split, self.splits(self.task_root))
            raise DataError.at(self.task_root / split, "no COCO annotation file (labels.json, "
                               f"annotations/instances_{split}.json or _annotations.coco.json)")
        self.annotation_path = path
        data = read_coco_json(path)
        self._parse(data)

    @staticmethod
    def splits(task_root: Path) -> list[str]:
        found = {p.name for p in list_subdirs(task_root) if annotation_file(task_root, p.name)}
        ann_dir = task_root / "annotations"
        if ann_dir.is_dir():
            for p in ann_dir.glob("instances_*.json"):
                found.add(p.stem.removeprefix("instances_").removesuffix("2017"))
        return sorted(found)

    @staticmethod
    def resolve_classes(task_root: Path, train_split: str, requested: list[str] | None, top_k: int = 10) -> list[str]:
        """The configured class names (checked), or the ``top_k`` most frequent in train."""
        path = annotation_file(task_root, train_split)
        if path is None:
            raise missing_split(task_root, train_split, CocoDetSplit.splits(task_root))
        data = read_coco_json(path)
        names = category_names(data, path)
        if requested:
            available = set(names.values())
            for name in requested:
                if name not in available:
                    raise DataError.at(path, f"configured detection class '{name}' is not among its categories")
            return list(requested)
        counts = Counter(
            names.get(a.get("category_id"))
            for a in data["annotations"]
            if not a.get("iscrowd", 0)
        )
        counts.pop(None, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [name for name, _ in ranked[:top_k]]

    @staticmethod
    def declared_classes(task_root: Path, split: str) -> list[str]:
        """The category names the split's annotation file declares."""
        path = annotation_file(task_root, split)
        if path is None:
            raise missing_split(task_root, split, CocoDetSplit.splits(task_root))
        return list(category_names(read_coco_json(path), path).values())

    def _image_dir(self) -> Path:
        split_dir = self.task_root / self.split
        for candidate in (split_dir / "data", split_dir, self.task_root / f"{self.split}2017",
                          self.task_root / "images" / self.split):
            if candidate.is_dir():
                return candidate
        raise DataError.at(split_dir, "image folder not found")

    def _parse(self, data: dict[str, Any]) -> None:
        path = self.annotation_path
        names = category_names(data, path)
        class_index = {name: i for i, name in enumerate(self.classes)}
        image_dir = self._image_dir()
        self.images: list[dict[str, Any]] = []
        self.files: list[Path] = []
        position: dict[int, int] = {}
        by_file: dict[Path, int] = {}
        for entry in data["images"]:
            try:
                image_id, file_name = int(entry["id"]), str(entry["file_name"])
            except (KeyError, TypeError, ValueError):
                raise DataError.at(path, "an image entry lacks an integer 'id' or a 'file_name'") from None
            file = image_dir / file_name
            if not file.is_file() and (image_dir / Path(file_name).name).is_file():
                file = image_dir / Path(file_name).name
            if not file.is_file():
                raise DataError.at(path, f"image {image_id} points at missing file {file}")
            if image_id in position:
                raise DataError.at(path, f"image id {image_id} is listed twice (an id names one image)")
            same = by_file.get(file.resolve())
            if same is not None:
                raise DataError.at(path, f"images {same} and {image_id} name the same file {file_name} "
                                   "(an image is listed once, with all its annotations)")
            by_file[file.resolve()] = image_id
            position[image_id] = len(self.images)
            self.images.append(entry)
            self.files.append(file)
        if not self.images:
            raise DataError.at(path, "empty split: no images")
        self.boxes: list[list[Box]] = [[] for _ in self.images]
        self.degenerate = 0
        self.non_finite = 0
        self.other_class = 0
        for ann in data["annotations"]:
            image_id = ann.get("image_id")
            if image_id not in position:
                raise DataError.at(path, f"annotation {ann.get('id')} points at missing image id {image_id}")
            name = names.get(ann.get("category_id"))
            if name is None:
                raise DataError.at(path, f"annotation {ann.get('id')} has unknown category id {ann.get('category_id')}")
            if name not in class_index:
                self.other_class += 1
                continue
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                raise DataError.at(path, f"annotation {ann.get('id')} has no valid 'bbox' [x, y, w, h]") from None
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                self.non_finite += 1
                self.warnings.append(f"{path}: annotation {ann.get('id')} dropped: non-finite bbox "
                                     f"[{x:g}, {y:g}, {w:g}, {h:g}] (NaN or inf)")
                continue
            if w < 1 or h < 1:
                self.degenerate += 1
                self.warnings.append(f"{path}: annotation {ann.get('id')} dropped: degenerate bbox "
                                     f"[{x:g}, {y:g}, {w:g}, {h:g}] (w or h < 1 px)")
                continue
            try:
                area = float(ann.get("area", w * h))
            except (TypeError, ValueError):
                area = math.nan
            if not math.isfinite(area) or area < 0:
                area = w * h  # a missing, NaN or negative area: the box's, as COCO computes it without a mask
            self.boxes[position[image_id]].append(
                Box((x, y, w, h), class_index[name], area, bool(ann.get("iscrowd", 0))))

    def __len__(self) -> int:
        return len(self.images)

    def training_problem(self) -> str | None:
        """A training split without one (non-crowd) box of its classes trains nothing."""
        if any(not b.iscrowd for boxes in self.boxes for b in boxes):
            return None
        if not self.classes:
            return f"{self.annotation_path}: no annotations (or only crowd ones): no detection class to train"
        return (f"{self.annotation_path}: no annotations of its classes ({', '.join(self.classes)}) in training "
                f"split '{self.split}': nothing to train")

    def source(self, index: int) -> Path:
        return self.files[index]

    def load_target(self, index: int, image: tv_tensors.Image) -> dict[str, Any]:
        height, width = image.shape[-2:]
        train_boxes = [b for b in self.boxes[index] if not b.iscrowd]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (b.xywh for b in train_boxes)],
                            dtype=torch.float32).reshape(-1, 4)
        return {
            "boxes": tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([b.label for b in train_boxes], dtype=torch.int64),
        }

    @cached_property
    def coco_ground_truth(self) -> dict[str, Any]:
        """COCO JSON of this split for COCOeval: image id = dataset index,
        category id = class index + 1, crowd boxes kept with ``iscrowd``."""
        images, annotations = [], []
        for index, entry in enumerate(self.images):
            images.append({"id": index, "file_name": self.files[index].name,
                           "width": entry.get("width"), "height": entry.get("height")})
            for box in self.boxes[index]:
                annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": box.label + 1,
                                    "bbox": list(box.xywh), "area": box.area, "iscrowd": int(box.iscrowd)})
        categories = [{"id": i + 1, "name": name} for i, name in enumerate(self.classes)]
        return {"images": images, "annotations": annotations, "categories": categories}

    def report(self) -> SplitReport:
        per_class = Counter(self.classes[b.label] for boxes in self.boxes for b in boxes if not b.iscrowd)
        crowd = sum(b.iscrowd for boxes in self.boxes for b in boxes)
        return SplitReport(
            images=len(self),
            classes=len(self.classes),
            stats={
                "annotation file": str(self.annotation_path.relative_to(self.task_root)),
                "boxes": sum(per_class.values()),
                "boxes per class": {name: per_class.get(name, 0) for name in self.classes},
                "images without boxes": sum(1 for boxes in self.boxes if not any(not b.iscrowd for b in boxes)),
                "crowd boxes (eval only)": crowd,
                "dropped: other classes": self.other_class,
                "dropped: degenerate (w or h < 1 px)": self.degenerate,
                "dropped: non-finite (NaN or inf)": self.non_finite,
            },
            warnings=list(self.warnings),
        )
