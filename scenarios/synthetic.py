"""The embedded default: a tiny dataset in the challenge layout and real file
formats (JPEG images, palette PNG masks, COCO JSON, class folders), written
deterministically by seed into a cache folder and read by the real readers.

Objects are coloured shapes whose colour identifies the class, so every task
is learnable within a minute of CPU at 64 px.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from scenarios.imagenette import IMAGENETTE_CLASSES
from scenarios.voc_seg import IGNORE_INDEX

FORMAT_VERSION = 1
# Ten well separated colours; class k of every task is drawn in COLOURS[k].
COLOURS = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (250, 190, 190), (0, 0, 128),
]
SEG_CLASSES = (1, 7, 8, 12, 15)  # aeroplane, car, cat, dog, person
DET_CATEGORIES = [  # (COCO id, name): ids deliberately not contiguous
    (1, "person"), (3, "car"), (62, "chair"), (84, "book"), (44, "bottle"),
    (47, "cup"), (51, "bowl"), (27, "backpack"), (33, "suitcase"), (31, "handbag"),
]


def cache_root() -> Path:
    return Path(os.environ.get("CL_BENCH_CACHE", Path.home() / ".cache" / "cl_bench"))


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (256 entries, flattened RGB)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def _background(rng: random.Random, size: int) -> Image.Image:
    base = np.array([rng.randint(90, 160)] * 3, dtype=np.float32)
    gradient = np.linspace(-25, 25, size, dtype=np.float32)[None, :, None] * rng.choice([-1, 1])
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 12, (size, size, 3)).astype(np.float32)
    return Image.fromarray(np.clip(base + gradient + noise, 0, 255).astype(np.uint8))


def _random_box(rng: random.Random, size: int, lo: float, hi: float) -> tuple[int, int, int, int]:
    w, h = (int(size * rng.uniform(lo, hi)) for _ in range(2))
    x, y = rng.randint(0, size - w), rng.randint(0, size - h)
    return x, y, x + w, y + h


def _draw_shape(draw: ImageDraw.ImageDraw, box, fill, ellipse: bool) -> None:
    (draw.ellipse if ellipse else draw.rectangle)(box, fill=fill)


def _write_seg(out: Path, split: str, count: int, rng: random.Random, size: int) -> None:
    folder = out / "mini_voc_seg" / split
    folder.mkdir(parents=True)
    for i in range(count):
        image = _background(rng, size)
        mask = Image.new("P", (size, size), 0)
        mask.putpalette(voc_palette())
        draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(SEG_CLASSES))
            box = _random_box(rng, size, 0.25, 0.55)
            ellipse = rng.random() < 0.5
            _draw_shape(draw_image, box, COLOURS[k], ellipse)
            (draw_mask.ellipse if ellipse else draw_mask.rectangle)(box, fill=SEG_CLASSES[k], outline=IGNORE_INDEX)
        image.save(folder / f"syn_{split}_{i:04d}.jpg", quality=95)
        mask.save(folder / f"syn_{split}_{i:04d}.png")


def _write_det(out: Path, split: str, count: int, rng: random.Random, size: int) -> None:
    folder = out / "mini_coco_det" / split
    (folder / "data").mkdir(parents=True)
    images, annotations = [], []
    for i in range(count):
        image = _background(rng, size)
        draw = ImageDraw.Draw(image)
        file_name = f"{split}_{i:06d}.jpg"
        images.append({"id": i + 1, "file_name": file_name, "width": size, "height": size})
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(DET_CATEGORIES))
            x0, y0, x1, y1 = _random_box(rng, size, 0.2, 0.45)
            _draw_shape(draw, (x0, y0, x1 - 1, y1 - 1), COLOURS[k], ellipse=False)
            w, h = x1 - x0, y1 - y0
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": DET_CATEGORIES[k][0],
                                "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0})
        image.save(folder / "data" / file_name, quality=95)
    categories = [{"id": cid, "name": name, "supercategory": None} for cid, name in DET_CATEGORIES]
    payload = {"info": {"description": "cl_bench synthetic"}, "images": images,
               "annotations": annotations, "categories": categories}
    (folder / "labels.json").write_text(json.dumps(payload))


def _write_cls(out: Path, split: str, count: int, rng: random.Random, size: int) -> None:
    wnids = list(IMAGENETTE_CLASSES)
    for i in range(count):
        k = i % len(wnids)
        image = _background(rng, size)
        draw = ImageDraw.Draw(image)
        stripe = max(3, size // 12)
        offset = rng.randrange(2 * stripe)
        for start in range(-size + offset, 2 * size, 2 * stripe):
            if k % 2:
                draw.line([(start, 0), (start + size, size)], fill=COLOURS[k], width=stripe)
            else:
                draw.line([(0, start), (size, start)], fill=COLOURS[k], width=stripe)
        folder = out / "imagenette_160" / split / wnids[k]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{wnids[k]}_{split}_{i:04d}.JPEG", quality=95)


WRITERS = (_write_seg, _write_det, _write_cls)


def write_synthetic(out: Path, seed: int = 0, size: int = 96, n_train: int = 40, n_val: int | None = None) -> Path:
    """Write the three tasks' train and val splits below ``out`` (which must not exist)."""
    n_val = n_val if n_val is not None else max(10, n_train // 4)
    for task_index, writer in enumerate(WRITERS):
        for split_index, (split, count) in enumerate((("train", n_train), ("val", n_val))):
            writer(out, split, count, random.Random(f"{seed}-{task_index}-{split_index}"), size)
    return out


def synthetic_path(seed: int = 0, size: int = 96, n_train: int = 40) -> Path:
    """Where the synthetic default with these settings lives in the cache."""
    return cache_root() / "synthetic" / f"v{FORMAT_VERSION}-seed{seed}-px{size}-n{n_train}"


def ensure_synthetic(seed: int = 0, size: int = 96, n_train: int = 40) -> Path:
    """The synthetic default in the cache, written on first use (atomically)."""
    target = synthetic_path(seed, size, n_train)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        write_synthetic(staging / "data", seed=seed, size=size, n_train=n_train)
        try:
            os.replace(staging / "data", target)
        except OSError:
            if not target.is_dir():  # lost a race to another writer otherwise
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
