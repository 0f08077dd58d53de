"""Seconds the bootstrap takes on 60 synthetic val images per task: each statistic
alone, each task's paired drop (base and final), and a run's whole bootstrap.

    python bench/bootstrap_speed.py [--images 60] [--resamples 200] [--exact-resamples 5]

Detection has ~5 ground-truth boxes (5 % crowd) and 100 detections per image over
10 classes; ``--exact-resamples`` times coco_map on resampled data sets (the exact
path) for that many resamples and scales the time to ``--resamples``.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

import _common  # noqa: F401  (import path, quiet warnings)
import numpy as np

from cl_bench.bootstrap import coco_statistic, drop_interval, interval, mean_statistic, miou_statistic


def segmentation(rng: np.random.Generator, n: int, classes: int = 21, pixels: int = 160 * 160) -> np.ndarray:
    """Per-image confusions ``[n, C, C]``: a few classes per image, most pixels on the diagonal."""
    confusions = np.zeros((n, classes, classes), dtype=np.int64)
    for image in range(n):
        present = np.r_[0, rng.choice(np.arange(1, classes), 2, replace=False)]
        truth = rng.choice(present, pixels, p=[0.6, 0.25, 0.15])
        pred = np.where(rng.random(pixels) < 0.7, truth, rng.choice(present, pixels))
        np.add.at(confusions[image], (truth, pred), 1)
    return confusions


def detection(rng: np.random.Generator, n: int, categories: int = 10) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO ground truth (~5 boxes per image) and 100 detections per image, a tenth near a true box."""
    images, annotations, detections = [], [], []
    for image in range(n):
        images.append({"id": image, "width": 320, "height": 320})
        truth = []
        for _ in range(rng.integers(3, 8)):
            (x, y), (w, h) = rng.uniform(0, 250, 2), rng.uniform(8, 70, 2)
            category = int(rng.integers(1, categories + 1))
            annotations.append({"id": len(annotations) + 1, "image_id": image, "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.05)})
            truth.append(([x, y, w, h], category))
        for _ in range(100):
            if rng.random() < 0.1:
                bbox, category = truth[rng.integers(len(truth))]
                bbox = np.abs(np.asarray(bbox) + rng.normal(0, 4, 4)) + [0, 0, 1, 1]
            else:
                bbox = np.r_[rng.uniform(0, 250, 2), rng.uniform(8, 70, 2)]
                category = int(rng.integers(1, categories + 1))
            detections.append({"image_id": image, "category_id": category, "bbox": [float(v) for v in bbox],
                               "score": float(rng.random())})
    categories_ = [{"id": c, "name": str(c)} for c in range(1, categories + 1)]
    return {"images": images, "annotations": annotations, "categories": categories_}, detections


def degrade(confusions: np.ndarray) -> np.ndarray:
    """A third of each image's correct pixels predicted as class 0 instead."""
    confusions, classes = confusions.copy(), np.arange(confusions.shape[1])
    moved = confusions[:, classes, classes] // 3
    confusions[:, classes, classes] -= moved
    confusions[:, classes, 0] += moved
    return confusions


def seconds(work: partial) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--exact-resamples", type=int, default=5)
    args = parser.parse_args()
    rng, n = np.random.default_rng(0), args.images

    seg_base = segmentation(rng, n)
    seg_final = degrade(seg_base)
    ground_truth, det_base = detection(rng, n)
    det_final = [{**d, "score": d["score"] * rng.random()} for d in det_base]
    ids = list(range(n))
    cls_base, cls_final = (rng.random(n) < 0.8).astype(float), (rng.random(n) < 0.75).astype(float)

    start = time.perf_counter()
    tasks = {
        "seg mIoU": (miou_statistic(seg_base), miou_statistic(seg_final)),
        "det mAP": (coco_statistic(ground_truth, det_base, ids), coco_statistic(ground_truth, det_final, ids)),
        "det mAP@0.5": (coco_statistic(ground_truth, det_base, ids, "mAP50"),
                        coco_statistic(ground_truth, det_final, ids, "mAP50")),
        "cls Top-1": (mean_statistic(cls_base), mean_statistic(cls_final)),
    }
    build = time.perf_counter() - start
    print(f"{n} images, {args.resamples} resamples; building the 8 statistics: {build:.2f} s")
    total = build
    for name, (base, final) in tasks.items():
        alone = seconds(partial(interval, base, n, resamples=args.resamples))
        paired = seconds(partial(drop_interval, base, final, n, resamples=args.resamples))
        total += paired
        print(f"{name:12s} interval {alone:6.2f} s   drop_interval (base + final + drop) {paired:6.2f} s")
    print(f"a run's bootstrap (one drop_interval per metric, which includes the base and final intervals): "
          f"{total:.1f} s")

    if args.exact_resamples:
        exact = coco_statistic(ground_truth, det_base, ids, exact=True)
        draws = [rng.integers(0, n, n) for _ in range(args.exact_resamples)]
        per = seconds(partial(list, map(exact, draws))) / args.exact_resamples
        print(f"exact COCO path (coco_map per resampled data set): {per:.3f} s per resample, "
              f"{per * args.resamples:.0f} s per {args.resamples} resamples")


if __name__ == "__main__":
    main()
