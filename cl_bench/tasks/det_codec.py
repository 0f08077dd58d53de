"""Anchor-free detection on the stride-16 grid: assignment, encoding, decoding.

Per cell the head emits ``tx, ty, tw, th, conf, class logits``:
  cx = (col + 2*sigmoid(tx) - 0.5) * stride_x   (centre may sit in a neighbour cell)
  cy = (row + 2*sigmoid(ty) - 0.5) * stride_y
  w  = sigmoid(tw) * input_width,  h = sigmoid(th) * input_height
Boxes are in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import batched_nms, box_convert

EPS = 1e-4


def grid_boxes(output: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    """Decoded XYXY boxes of every cell: ``[B, h, w, 4]`` in input pixels."""
    height, width = input_size
    rows, cols = output.shape[-2:]
    gy, gx = torch.meshgrid(torch.arange(rows, device=output.device), torch.arange(cols, device=output.device),
                            indexing="ij")
    t = output[:, :4].sigmoid()
    cx = (gx + 2 * t[:, 0] - 0.5) * (width / cols)
    cy = (gy + 2 * t[:, 1] - 0.5) * (height / rows)
    cxcywh = torch.stack([cx, cy, t[:, 2] * width, t[:, 3] * height], dim=-1)
    return box_convert(cxcywh, "cxcywh", "xyxy")


@dataclass
class Assignment:
    """Training targets on the grid: ``objectness`` [B, h, w] in {0, 1},
    ``labels`` [B, h, w] (-1 where no object) and ``boxes`` [B, h, w, 4] XYXY."""

    objectness: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor

    @property
    def positive(self) -> torch.Tensor:
        return self.objectness > 0


def assign(boxes: list[torch.Tensor], labels: list[torch.Tensor], grid: tuple[int, int],
           input_size: tuple[int, int], neighbours: bool = True) -> Assignment:
    """Each box goes to the cell holding its centre (and, with ``neighbours``,
    the horizontally and vertically nearest adjacent cells). A centre cell is
    never given up to another box's neighbour cell; where two boxes share a
    centre cell (or, among neighbours, a cell), the smaller one wins."""
    rows, cols = grid
    height, width = input_size
    sy, sx = height / rows, width / cols
    device = boxes[0].device if boxes else torch.device("cpu")
    batch = len(boxes)
    # built on the CPU from plain lists: one transfer per minibatch, not one device sync per box
    objectness = torch.zeros(batch, rows, cols)
    target_labels = torch.full((batch, rows, cols), -1, dtype=torch.int64)
    target_boxes = torch.zeros(batch, rows, cols, 4)
    for b, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        if len(image_boxes) == 0:
            continue
        coords, classes = image_boxes.detach().cpu().tolist(), image_labels.cpu().tolist()
        areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in coords]
        centres, around = [], []
        for k in sorted(range(len(coords)), key=lambda i: -areas[i]):
            x0, y0, x1, y1 = coords[k]
            fx, fy = (x0 + x1) / 2 / sx, (y0 + y1) / 2 / sy
            col, row = min(max(int(fx), 0), cols - 1), min(max(int(fy), 0), rows - 1)
            centres.append((k, row, col))
            if neighbours:
                dc = -1 if fx - col < 0.5 else 1
                dr = -1 if fy - row < 0.5 else 1
                around += [(k, row, col + dc), (k, row + dr, col)]
        # later writes win: neighbours (largest box first), then centres (largest first)
        for k, r, c in around + centres:
            if 0 <= r < rows and 0 <= c < cols:
                objectness[b, r, c] = 1.0
                target_labels[b, r, c] = classes[k]
                target_boxes[b, r, c] = torch.tensor(coords[k])
    return Assignment(objectness.to(device), target_labels.to(device), target_boxes.to(device))


def encode(boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, grid: tuple[int, int],
           input_size: tuple[int, int], neighbours: bool = False, confidence: float = 12.0) -> torch.Tensor:
    """The head output ``[5 + C, h, w]`` that decodes exactly to these boxes."""
    rows, cols = grid
    height, width = input_size
    target = assign([boxes], [labels], grid, input_size, neighbours)
    out = torch.zeros(5 + num_classes, rows, cols)
    out[4] = -confidence
    for r, c in target.positive[0].nonzero().tolist():
        cx, cy, w, h = box_convert(target.boxes[0, r, c][None], "xyxy", "cxcywh")[0].tolist()
        offsets = ((cx / (width / cols) - c + 0.5) / 2, (cy / (height / rows) - r + 0.5) / 2, w / width, h / height)
        out[:4, r, c] = torch.logit(torch.tensor(offsets).clamp(EPS, 1 - EPS))
        out[4, r, c] = confidence
        out[5 + int(target.labels[0, r, c]), r, c] = confidence
    return out


def detect(output: torch.Tensor, input_size: tuple[int, int], score_threshold: float = 0.001,
           nms_iou: float = 0.6, max_detections: int = 100, pre_nms_top_k: int = 1000) -> list[torch.Tensor]:
    """Per image, rows ``[cx, cy, w, h, score, class]`` in input pixels:
    score = conf x class probability, top-k, class-wise NMS."""
    num_classes = output.shape[1] - 5
    boxes = grid_boxes(output, input_size).flatten(1, 2)
    scores = output[:, 4].sigmoid().flatten(1)[..., None] * output[:, 5:].softmax(dim=1).flatten(2).transpose(1, 2)
    results = []
    for image_boxes, image_scores in zip(boxes, scores.flatten(1)):
        keep = (image_scores > score_threshold).nonzero().squeeze(1)
        top = image_scores[keep].topk(min(pre_nms_top_k, len(keep)))
        flat, score = keep[top.indices], top.values
        cell, cls = flat // num_classes, flat % num_classes
        kept = batched_nms(image_boxes[cell], score, cls, nms_iou)[:max_detections]
        rows = torch.cat([box_convert(image_boxes[cell[kept]], "xyxy", "cxcywh"), score[kept, None],
                          cls[kept, None].float()], dim=1)
        results.append(rows)
    return results
