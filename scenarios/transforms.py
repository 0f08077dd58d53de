"""torchvision.transforms.v2 pipelines on (image, target) pairs, so boxes and
masks move with the image. Every task is resized to the same square size:
replay mixes tasks in one minibatch."""

from __future__ import annotations

from typing import Any

import torch
from avalanche.benchmarks.utils.transforms import MultiParamTransform
from torch.utils._pytree import tree_flatten
from torchvision import tv_tensors
from torchvision.transforms import v2

from cl_bench.config import IMAGENET_MEAN, IMAGENET_STD


class SanitizeBoxesIfAny(v2.SanitizeBoundingBoxes):
    """Drop degenerate boxes (and their labels) after geometric augmentation;
    samples without boxes (segmentation, classification) pass unchanged."""

    def forward(self, *inputs: Any) -> Any:
        flat, _ = tree_flatten(inputs)
        if not any(isinstance(x, tv_tensors.BoundingBoxes) for x in flat):
            return inputs if len(inputs) > 1 else inputs[0]
        return super().forward(*inputs)


class PairTransform(MultiParamTransform):
    """Applies a v2 pipeline to ``(image, target)`` together.

    Avalanche's transform groups apply a plain torchvision transform to the
    image alone; a MultiParamTransform receives every element of the sample.
    """

    def __init__(self, pipeline: v2.Transform):
        self.pipeline = pipeline

    def __call__(self, image: torch.Tensor, target: dict[str, Any], *rest: Any) -> tuple[Any, ...]:
        return (*self.pipeline(image, target), *rest)

    def flat_transforms(self, position: int) -> list[Any]:
        return [self.pipeline] if position == 0 else []

    def __repr__(self) -> str:
        return f"PairTransform({self.pipeline})"


def _normalise() -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def eval_transform(size: int) -> PairTransform:
    """Resize to ``size`` x ``size`` and normalise with ImageNet statistics."""
    return PairTransform(v2.Compose([v2.Resize((size, size), antialias=True), *_normalise()]))


def train_transform(size: int, augment: bool = True) -> PairTransform:
    """Scale jitter and crop, horizontal flip and colour jitter, keeping boxes and masks aligned."""
    if not augment:
        return eval_transform(size)
    return PairTransform(
        v2.Compose([
            v2.RandomResizedCrop((size, size), scale=(0.4, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
            v2.ClampBoundingBoxes(),
            SanitizeBoxesIfAny(min_size=1.0),
            *_normalise(),
        ])
    )
