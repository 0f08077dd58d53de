"""Metrics against hand-computed cases and an independent pycocotools run."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cl_bench.metrics import confusion_matrix, iou_from_confusion, top_k_hits
from cl_bench.tasks import build_tasks
from cl_bench.tasks.batch import TaskTargets
from cl_bench.tasks.det_codec import encode
from scenarios.coco_det import CocoDetSplit
from scenarios.voc_seg import VOC_CLASSES, VocSegSplit
from tests import builders as b

TASKS = build_tasks()


def targets(index, orig_size, input_size, **fields) -> TaskTargets:
    n = len(index)
    return TaskTargets(torch.arange(n), torch.tensor(index), torch.tensor(orig_size), input_size, fields)


# ---- segmentation -----------------------------------------------------------------

def test_miou_hand_computed():
    truth = torch.tensor([[0, 0, 1, 1], [0, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 2, 0, 2]])
    confusion = confusion_matrix(pred, truth, num_classes=4)
    # class 0: tp 2, fp 1 (pred 0 where 2), fn 1 (0 predicted 1) -> 2/4
    # class 1: tp 2, fp 1, fn 0 -> 2/3 ; class 2: tp 1, fp 0, fn 1 -> 1/2
    # class 3: absent from truth and prediction -> excluded (not 1.0); 255 ignored
    result = iou_from_confusion(confusion)
    assert result["mIoU"] == pytest.approx((2 / 4 + 2 / 3 + 1 / 2) / 3)
    assert result["pixel_acc"] == pytest.approx(5 / 7)


def test_segmentation_metric_accumulates_the_split_at_original_size(tmp_path):
    # two images of 40x30 with class 15 in a rectangle; the "model" predicts the
    # truth of image 0 everywhere, at a different (input) size
    root = b.seg_flat(tmp_path / "seg", {"val": 2})
    split = VocSegSplit(root, "val", list(VOC_CLASSES))
    metric = TASKS["seg"].metric(split)
    truth = split.read_mask(0)
    logits = torch.zeros(2, 21, 30, 40)
    logits[:, 15][:, torch.from_numpy(truth == 15)] = 5.0
    logits[:, 0][:, torch.from_numpy(truth == 0)] = 5.0
    upsized = torch.nn.functional.interpolate(logits, size=(60, 80), mode="nearest")
    metric.update(upsized, targets([0, 1], [[30, 40], [30, 40]], (60, 80)))
    result = metric.result()
    assert result["mIoU"] == pytest.approx(1.0)
    assert result["pixel_acc"] == pytest.approx(1.0)


# ---- classification ---------------------------------------------------------------

def test_top_k_hand_computed():
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    labels = torch.tensor([2, 0, 0])
    assert top_k_hits(logits, labels, 1).sum() == 1
    assert top_k_hits(logits, labels, 2).sum() == 2
    assert top_k_hits(logits, labels, 5).sum() == 3  # k capped at the class count
    metric = TASKS["cls"].metric(None)
    metric.update(logits, targets([0, 1, 2], [[1, 1]] * 3, (1, 1), label=labels))
    assert metric.result() == {"top1": pytest.approx(1 / 3), "top5": pytest.approx(1.0)}


# ---- detection --------------------------------------------------------------------

GT_BOXES = {0: [(1, [2, 2, 14, 10]), (3, [40, 20, 20, 20])], 1: [(18, [10, 8, 30, 25])]}
CLASSES = ["person", "car", "dog"]
ORIG, INPUT = (48, 64), (64, 64)  # original (h, w) and network input (h, w)


@pytest.fixture
def det_split(tmp_path) -> CocoDetSplit:
    data = b.coco_json(b.CATS, [GT_BOXES[0], GT_BOXES[1]], size=(64, 48))
    b.det_split(tmp_path / "det", "val", data)
    return CocoDetSplit(tmp_path / "det", "val", CLASSES)


def fake_output(boxes_by_image: dict[int, list[tuple[int, list[float]]]]) -> torch.Tensor:
    """A head output that decodes to these (category id, original xywh) boxes."""
    names = dict(b.CATS)
    outputs = []
    sy = INPUT[0] / ORIG[0]
    for image in sorted(boxes_by_image):
        xyxy = torch.tensor([[x, y * sy, x + w, (y + h) * sy] for _, (x, y, w, h) in boxes_by_image[image]])
        labels = torch.tensor([CLASSES.index(names[cid]) for cid, _ in boxes_by_image[image]])
        outputs.append(encode(xyxy, labels, len(CLASSES), grid=(4, 4), input_size=INPUT))
    return torch.stack(outputs)


def evaluate_det(split, boxes_by_image) -> dict[str, float]:
    metric = TASKS["det"].metric(split)
    metric.update(fake_output(boxes_by_image), targets([0, 1], [list(ORIG)] * 2, INPUT))
    return metric.result()


def test_perfect_detections_give_map_1(det_split):
    result = evaluate_det(det_split, GT_BOXES)
    assert result == {"mAP": pytest.approx(1.0), "mAP50": pytest.approx(1.0)}


def test_shifted_boxes_match_an_independent_cocoeval(det_split, tmp_path):
    shifted = {i: [(cid, [x + 3, y + 2, w, h]) for cid, (x, y, w, h) in boxes] for i, boxes in GT_BOXES.items()}
    ours = evaluate_det(det_split, shifted)
    # independent run: pycocotools on the file on disk, with the file's own category ids
    gt_file = tmp_path / "det" / "val" / "labels.json"
    detections = [{"image_id": i + 1, "category_id": cid, "bbox": box, "score": 0.9}
                  for i, boxes in shifted.items() for cid, box in boxes]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_file))
        evaluator = COCOeval(coco, coco.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert 0.2 < ours["mAP"] < 0.9
    assert ours["mAP"] == pytest.approx(evaluator.stats[0], abs=1e-6)
    assert ours["mAP50"] == pytest.approx(evaluator.stats[1], abs=1e-6)


def test_no_detections_give_zero(det_split):
    output = torch.full((2, 8, 4, 4), -20.0)
    metric = TASKS["det"].metric(det_split)
    metric.update(output, targets([0, 1], [list(ORIG)] * 2, INPUT))
    assert metric.result() == {"mAP": 0.0, "mAP50": 0.0}


def test_crowd_boxes_are_ignored_as_cocoeval_does(tmp_path):
    boxes = [[(1, [2, 2, 20, 20]), (1, [35, 5, 25, 25])]]
    data = b.coco_json(b.CATS, boxes, size=(64, 64), crowd={(0, 1)})
    b.det_split(tmp_path / "det", "val", data, size=(64, 64))
    split = CocoDetSplit(tmp_path / "det", "val", CLASSES)
    metric = TASKS["det"].metric(split)
    # detect both the normal and the crowd object: the crowd match is not a false positive
    out = encode(torch.tensor([[2.0, 2, 22, 22], [35, 5, 60, 30]]), torch.tensor([0, 0]), 3, (4, 4), (64, 64))
    metric.update(out[None], targets([0], [[64, 64]], (64, 64)))
    assert metric.result()["mAP"] == pytest.approx(1.0)
    gt = json.loads(json.dumps(split.coco_ground_truth))
    assert [a["iscrowd"] for a in gt["annotations"]] == [0, 1]
