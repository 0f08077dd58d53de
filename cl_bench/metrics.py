"""Metric arithmetic shared by tasks: confusion-matrix mIoU, top-k, COCOeval."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """``C[t, p]`` counts pixels of true class t predicted as p (ignored pixels skipped)."""
    valid = target != ignore_index
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(confusion: torch.Tensor) -> dict[str, float]:
    """mIoU over the classes present in ground truth or prediction (absent ones
    are excluded from the mean, not counted as 1.0) and pixel accuracy."""
    confusion = confusion.double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    miou = (tp[present] / union[present]).mean().item() if present.any() else 0.0
    total = confusion.sum().item()
    return {"mIoU": miou, "pixel_acc": tp.sum().item() / total if total else 0.0}


def top_k_hits(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Per row: whether the label is among the ``k`` highest logits."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)


def coco_map(ground_truth: dict[str, Any], detections: list[dict[str, Any]], image_ids: list[int]) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@0.5 with pycocotools' COCOeval on ``image_ids``.

    ``ground_truth`` is a COCO dict (crowd boxes marked ``iscrowd``, which
    COCOeval treats as ignore regions); ``detections`` COCO result rows. No
    detections gives 0. COCOeval's printing is kept out of the way.
    """
    if not detections or not image_ids:
        return {"mAP": 0.0, "mAP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = ground_truth
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = np.maximum(evaluator.stats, 0.0)  # -1 means "no ground truth": count as 0
    return {"mAP": float(stats[0]), "mAP50": float(stats[1])}

