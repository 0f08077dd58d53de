"""Tiny datasets in every supported layout, written by the tests; ``read_runs`` reads a results folder's runs.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cl_bench.results import RENAMED_COLUMNS, runs_columns
from scenarios.synthetic import voc_palette


def write_jpg(path: Path, size: tuple[int, int] = (40, 30), colour: int = 100) -> Path:
    """An RGB JPEG of ``size`` (w, h)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (colour, 255 - colour, 50)).save(path)
    return path


def write_mask(path: Path, values: np.ndarray, palette: bool = True) -> Path:
    """A class-index PNG (palette mode by default, like VOC)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(values.astype(np.uint8), mode="L")
    if palette:
        image = image.convert("P")
        image.putpalette(voc_palette())
    image.save(path)
    return path


def simple_mask(w: int = 40, h: int = 30, cls: int = 15) -> np.ndarray:
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[5:20, 10:30] = cls
    mask[5, 10:30] = 255
    return mask


def seg_flat(root: Path, splits: dict[str, int]) -> Path:
    for split, n in splits.items():
        for i in range(n):
            write_jpg(root / split / f"img{i}.jpg")
            write_mask(root / split / f"img{i}.png", simple_mask())
    return root


def seg_voc(root: Path, lists: dict[str, list[str]]) -> Path:
    names = sorted({n for names in lists.values() for n in names})
    for name in names:
        write_jpg(root / "JPEGImages" / f"{name}.jpg")
        write_mask(root / "SegmentationClass" / f"{name}.png", simple_mask())
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for split, members in lists.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(members) + "\n")
    return root


def seg_images_masks(root: Path, splits: dict[str, int]) -> Path:
    for split, n in splits.items():
        for i in range(n):
            write_jpg(root / split / "images" / f"a{i}.jpg")
            write_mask(root / split / "masks" / f"a{i}.png", simple_mask())
    return root


def coco_json(categories: list[tuple[int, str]], boxes: list[list[tuple[int, list[float]]]],
              size: tuple[int, int] = (64, 48), crowd: set[tuple[int, int]] = frozenset()) -> dict:
    """COCO JSON: ``boxes[i]`` lists (category_id, xywh) of image i (id i+1, file img{i}.jpg)."""
    images, annotations = [], []
    for i, image_boxes in enumerate(boxes):
        images.append({"id": i + 1, "file_name": f"img{i}.jpg", "width": size[0], "height": size[1]})
        for j, (cid, xywh) in enumerate(image_boxes):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": cid,
                                "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": int((i, j) in crowd)})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": cid, "name": name} for cid, name in categories]}


def det_split(root: Path, split: str, data: dict, json_path: Path | None = None,
              image_dir: Path | None = None, size: tuple[int, int] = (64, 48)) -> Path:
    """Write ``data`` as labels.json (or ``json_path``) and its images (into SPLIT/data/ by default)."""
    json_path = json_path or root / split / "labels.json"
    image_dir = image_dir or root / split / "data"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data))
    for entry in data.get("images", []):
        write_jpg(image_dir / entry["file_name"], size)
    return root


CATS = [(1, "person"), (3, "car"), (18, "dog")]


def det_default(root: Path) -> Path:
    """train: person x3, car x2, dog x1; val uses re-numbered (0-based) ids."""
    train = coco_json(CATS, [[(1, [1, 1, 20, 20]), (3, [30, 5, 20, 30])],
                             [(1, [2, 2, 10, 10]), (1, [20, 20, 15, 10]), (18, [5, 5, 30, 30])],
                             [(3, [0, 0, 50, 40])]])
    val = coco_json([(0, "dog"), (1, "car"), (2, "person")], [[(2, [1, 1, 20, 20])], [(0, [3, 3, 10, 10])]])
    det_split(root, "train", train)
    det_split(root, "val", val)
    return root


def cls_folders(root: Path, splits: dict[str, int], classes: list[str], size=(40, 30)) -> Path:
    for split, n in splits.items():
        for k, name in enumerate(classes):
            for i in range(n):
                write_jpg(root / split / name / f"{name}_{i}.JPEG", size, colour=20 * k)
    return root


def challenge_root(root: Path) -> Path:
    """All three tasks in the challenge layout below ``root``."""
    seg_flat(root / "mini_voc_seg", {"train": 3, "val": 2})
    det_default(root / "mini_coco_det")
    cls_folders(root / "imagenette_160", {"train": 2, "val": 1}, ["n01440764", "n02102040"])
    return root


def read_runs(runs_csv: Path) -> pd.DataFrame:
    """``runs.csv`` as a DataFrame (empty, with ``runs_columns()``, when the file is absent)."""
    runs_csv = Path(runs_csv)
    if not runs_csv.is_file():
        return pd.DataFrame(columns=runs_columns())
    table = pd.read_csv(runs_csv, dtype={"run_id": str, "strategy": str, "order": str, "epochs": str})
    return table.rename(columns={old: new for old, new in RENAMED_COLUMNS.items() if new not in table})
