"""Boxes and masks move with the image; every task ends at the same square size."""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from cl_bench.config import IMAGENET_MEAN, IMAGENET_STD
from scenarios.transforms import PairTransform, SanitizeBoxesIfAny, eval_transform, train_transform


def sample(h=30, w=40):
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[:, 5:15, 2:12] = 255  # a white square
    mask = torch.zeros(h, w, dtype=torch.int64)
    mask[5:15, 2:12] = 7
    boxes = tv_tensors.BoundingBoxes([[2.0, 5, 12, 15]], format="XYXY", canvas_size=(h, w))
    target = {"task": "det", "index": 3, "orig_size": (h, w), "mask": tv_tensors.Mask(mask),
              "boxes": boxes, "labels": torch.tensor([4])}
    return tv_tensors.Image(image), target


def test_eval_transform_resizes_everything_together():
    image, target = eval_transform(60)(*sample())
    assert image.shape == (3, 60, 60) and image.dtype == torch.float32
    assert target["mask"].shape == (60, 60) and target["mask"].dtype == torch.int64
    assert set(target["mask"].unique().tolist()) == {0, 7}  # nearest: no blended labels
    x_scale, y_scale = 60 / 40, 60 / 30
    assert torch.allclose(target["boxes"], torch.tensor([[2 * x_scale, 5 * y_scale, 12 * x_scale, 15 * y_scale]]))
    assert target["orig_size"] == (30, 40) and target["index"] == 3  # kept to map predictions back


def test_normalisation_uses_imagenet_statistics():
    image, _ = eval_transform(8)(tv_tensors.Image(torch.full((3, 8, 8), 255, dtype=torch.uint8)), {"task": "cls"})
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(image[:, 0, 0], torch.tensor(expected))


def test_flip_moves_boxes_and_masks_with_the_image():
    flip = PairTransform(v2.Compose([v2.RandomHorizontalFlip(p=1.0)]))
    image, target = flip(*sample())
    assert target["boxes"].tolist() == [[28, 5, 38, 15]]
    white = image[0] == 255
    assert torch.equal(white, target["mask"] == 7)


def test_training_augmentation_keeps_boxes_on_the_object():
    torch.manual_seed(0)
    transform = train_transform(64)
    for _ in range(20):
        image, target = transform(*sample())
        assert image.shape == (3, 64, 64) and target["mask"].shape == (64, 64)
        assert len(target["boxes"]) == len(target["labels"])
        for x0, y0, x1, y1 in target["boxes"].round().int().tolist():
            inside = target["mask"][y0:y1, x0:x1]
            assert (inside == 7).float().mean() > 0.8  # the box still covers the object


def test_sanitize_drops_boxes_cut_away_and_ignores_box_free_samples():
    image, target = sample()
    target["boxes"] = tv_tensors.BoundingBoxes([[2.0, 5, 12, 15], [0, 0, 0.5, 9]], format="XYXY", canvas_size=(30, 40))
    target["labels"] = torch.tensor([4, 5])
    _, out = SanitizeBoxesIfAny()(image, target)
    assert out["labels"].tolist() == [4]
    cls_target = {"task": "cls", "label": 2}
    assert SanitizeBoxesIfAny()(image, cls_target)[1] == cls_target


def test_extra_sample_elements_pass_through():
    image, target = sample()
    out = eval_transform(16)(image, target, 2)
    assert len(out) == 3 and out[2] == 2


def test_cached_samples_are_decoded_once_and_never_changed_by_augmentation(synthetic_root):
    from cl_bench.tasks import build_tasks

    transform = train_transform(48)
    for task in build_tasks().values():
        root = next(p for name in task.folder_names if (p := synthetic_root / name).is_dir())
        split = task.open_split(root, "train", task.resolve_classes(root, "train", None))
        split.enable_cache()
        first = split[0]
        assert split[0] is first  # decoded once
        pristine = split.load(0)
        for _ in range(3):
            transform(*first)
        assert torch.equal(first[0], pristine[0]), task.name
        assert first[1].keys() == pristine[1].keys(), task.name
        for key, value in pristine[1].items():
            same = torch.equal(first[1][key], value) if torch.is_tensor(value) else first[1][key] == value
            assert same, (task.name, key)
