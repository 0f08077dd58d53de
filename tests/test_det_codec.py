"""Detection encoding, decoding and loss."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou

from cl_bench.tasks.batch import TaskTargets
from cl_bench.tasks.det_codec import assign, detect, encode, grid_boxes
from cl_bench.tasks.detection import DetectionTask, DetOptions


def test_encode_decode_round_trip_for_objects_in_distinct_cells():
    torch.manual_seed(0)
    size, grid = (128, 160), (8, 10)
    cells = torch.randperm(80)[:12]
    boxes = []
    for cell in cells.tolist():
        r, c = divmod(cell, 10)
        cx, cy = (c + torch.rand(1).item()) * 16, (r + torch.rand(1).item()) * 16
        w, h = 5 + 60 * torch.rand(1).item(), 5 + 60 * torch.rand(1).item()
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    boxes = torch.tensor(boxes)
    labels = torch.randint(0, 4, (12,))
    rows = detect(encode(boxes, labels, 4, grid, size)[None], size)[0]
    assert len(rows) == 12
    decoded = torch.cat([rows[:, :2] - rows[:, 2:4] / 2, rows[:, :2] + rows[:, 2:4] / 2], dim=1)
    iou = box_iou(boxes, decoded)
    best = iou.max(dim=1)
    assert (best.values > 0.99).all()
    assert torch.equal(rows[best.indices, 5].long(), labels)


def test_assignment_uses_the_centre_cell_and_optionally_two_neighbours():
    box = torch.tensor([[20.0, 20.0, 30.0, 40.0]])  # centre (25, 30): cell (1, 1) on a 16 px grid
    centre = assign([box], [torch.tensor([2])], (4, 4), (64, 64), neighbours=False)
    assert centre.positive[0].nonzero().tolist() == [[1, 1]]
    both = assign([box], [torch.tensor([2])], (4, 4), (64, 64), neighbours=True)
    # x 25/16 = 1.56 -> right neighbour; y 30/16 = 1.875 -> lower neighbour
    assert sorted(both.positive[0].nonzero().tolist()) == [[1, 1], [1, 2], [2, 1]]
    assert (both.labels[0][both.positive[0]] == 2).all()


def test_smaller_box_wins_a_shared_cell():
    big, small = [0.0, 0.0, 64.0, 64.0], [24.0, 24.0, 40.0, 40.0]
    target = assign([torch.tensor([small, big])], [torch.tensor([0, 1])], (4, 4), (64, 64), neighbours=False)
    assert target.labels[0, 2, 2] == 0


def test_a_neighbour_cell_never_takes_another_boxs_centre_cell():
    big = [8.0, 8.0, 56.0, 56.0]  # centre (32, 32): cell (2, 2)
    small = [36.0, 20.0, 44.0, 28.0]  # centre (40, 24): cell (1, 2), lower neighbour (2, 2)
    target = assign([torch.tensor([big, small])], [torch.tensor([0, 1])], (4, 4), (64, 64), neighbours=True)
    assert target.labels[0, 2, 2] == 0
    assert target.labels[0, 1, 2] == 1


def test_loss_is_small_for_a_perfect_output_and_large_otherwise():
    task = DetectionTask(DetOptions(neighbours=False))
    boxes, labels = torch.tensor([[4.0, 6.0, 30.0, 40.0]]), torch.tensor([1])
    targets = TaskTargets(torch.tensor([0]), torch.tensor([0]), torch.tensor([[64, 64]]), (64, 64),
                          {"boxes": [boxes], "labels": [labels]})
    perfect = encode(boxes, labels, 3, (4, 4), (64, 64))[None]
    good = task.loss(perfect, targets)
    bad = task.loss(torch.zeros_like(perfect), targets)
    assert good["loss"] < 0.01 < bad["loss"]
    assert set(good) == {"loss", "obj", "cls", "giou", "l1"}


def test_loss_without_any_object_is_finite_and_differentiable():
    task = DetectionTask()
    out = torch.zeros(2, 8, 4, 4, requires_grad=True)
    targets = TaskTargets(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([[64, 64]] * 2), (64, 64),
                          {"boxes": [torch.zeros(0, 4)] * 2, "labels": [torch.zeros(0, dtype=torch.int64)] * 2})
    loss = task.loss(out, targets)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and out.grad is not None


@pytest.mark.parametrize("objectness", ["focal", "bce"])
def test_both_objectness_losses(objectness):
    task = DetectionTask(DetOptions(objectness=objectness))
    boxes, labels = torch.tensor([[4.0, 6.0, 30.0, 40.0]]), torch.tensor([0])
    targets = TaskTargets(torch.tensor([0]), torch.tensor([0]), torch.tensor([[64, 64]]), (64, 64),
                          {"boxes": [boxes], "labels": [labels]})
    assert torch.isfinite(task.loss(torch.randn(1, 7, 4, 4), targets)["obj"])


def test_grid_boxes_cover_the_grid():
    zero = torch.zeros(1, 6, 2, 2)  # sigmoid(0) = 0.5: centred in each cell, half the image wide
    boxes = grid_boxes(zero, (32, 32))
    assert boxes[0, 1, 0].tolist() == pytest.approx([0.0, 16.0, 16.0, 32.0])


def test_distillation_is_zero_for_identical_outputs_and_positive_otherwise():
    from cl_bench.tasks import build_tasks

    torch.manual_seed(0)
    shapes = {"seg": (2, 21, 8, 8), "det": (2, 15, 4, 4), "cls": (2, 10)}
    for name, task in build_tasks().items():
        teacher = torch.randn(shapes[name])
        same = task.distillation(teacher.clone(), teacher, 2.0)
        other = task.distillation(torch.randn(shapes[name]), teacher, 2.0)
        assert same.abs() < 1e-5 < other
