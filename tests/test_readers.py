"""The readers load every supported layout, with names mapped consistently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cl_bench.config import DataConfig
from cl_bench.tasks import TASKS
from scenarios.coco_det import CocoDetSplit
from scenarios.imagenette import IMAGENETTE_CLASSES, ImagenetteSplit, readable
from scenarios.layout import find_task_folder, resolve_data
from scenarios.voc_seg import VOC_CLASSES, VocSegSplit
from tests import builders as b

# ---- segmentation -----------------------------------------------------------------

@pytest.mark.parametrize("layout", ["flat", "images+masks"])
def test_seg_folder_layouts(tmp_path, layout):
    writer = b.seg_flat if layout == "flat" else b.seg_images_masks
    root = writer(tmp_path / "seg", {"train": 3, "test": 2})
    split = VocSegSplit(root, "test", list(VOC_CLASSES))
    assert split.layout == layout and len(split) == 2
    image, target = split[0]
    assert image.shape == (3, 30, 40) and image.dtype == torch.uint8
    mask = target["mask"]
    assert mask.shape == (30, 40)
    assert set(mask.unique().tolist()) == {0, 15, 255}
    assert target["orig_size"] == (30, 40) and target["task"] == "seg"


def test_seg_voc_layout_warns_about_overlapping_lists(tmp_path):
    root = b.seg_voc(tmp_path / "voc", {"train": ["a", "b", "c"], "val": ["c", "d"]})
    assert VocSegSplit.splits(root) == ["train", "val"]
    split = VocSegSplit(root, "val", list(VOC_CLASSES))
    assert split.layout == "voc" and len(split) == 2
    assert split.warnings == ["1 images of 'val' are also listed in 'train'"]
    assert split.report().warnings == split.warnings


def test_seg_palette_and_greyscale_masks_read_as_indices(tmp_path):
    values = b.simple_mask(cls=7)
    for palette in (True, False):
        root = tmp_path / str(palette)
        b.write_jpg(root / "train" / "x.jpg")
        b.write_mask(root / "train" / "x.png", values, palette=palette)
        mask = VocSegSplit(root, "train", list(VOC_CLASSES))[0][1]["mask"]
        assert np.array_equal(mask.numpy(), values)


# ---- detection --------------------------------------------------------------------

def test_det_maps_categories_by_name_across_splits(tmp_path):
    root = b.det_default(tmp_path / "det")
    classes = CocoDetSplit.resolve_classes(root, "train", None, top_k=2)
    assert classes == ["person", "car"]  # most frequent first
    val = CocoDetSplit(root, "val", classes)
    # val image 0 holds a 'person' under id 2 there; image 1 only a dog (dropped, image kept)
    _, target = val[0]
    assert target["labels"].tolist() == [0]
    assert target["boxes"].tolist() == [[1, 1, 21, 21]]
    assert len(val) == 2 and val[1][1]["labels"].numel() == 0
    assert val.report().stats["dropped: other classes"] == 1


def test_det_given_class_list_and_top_k_default(tmp_path):
    root = b.det_default(tmp_path / "det")
    assert CocoDetSplit.resolve_classes(root, "train", None) == ["person", "car", "dog"]
    assert CocoDetSplit.resolve_classes(root, "train", ["dog", "car"]) == ["dog", "car"]
    train = CocoDetSplit(root, "train", ["dog", "car"])
    assert train[1][1]["labels"].tolist() == [0]


def test_det_crowd_boxes_are_eval_only_and_degenerate_boxes_dropped(tmp_path):
    data = b.coco_json(b.CATS, [[(1, [1, 1, 20, 20]), (1, [5, 5, 30, 30]), (3, [2, 2, 0.5, 10])]], crowd={(0, 1)})
    root = b.det_split(tmp_path / "det", "train", data)
    split = CocoDetSplit(root, "train", ["person", "car"])
    assert split[0][1]["boxes"].shape == (1, 4)  # crowd not a training target
    gt = split.coco_ground_truth
    assert [a["iscrowd"] for a in gt["annotations"]] == [0, 1]
    assert gt["categories"] == [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]
    report = split.report()
    assert report.stats["dropped: degenerate (w or h < 1 px)"] == 1
    assert report.stats["crowd boxes (eval only)"] == 1


@pytest.mark.parametrize("variant", ["split_root_images", "instances", "instances2017", "roboflow"])
def test_det_annotation_layouts(tmp_path, variant):
    root = tmp_path / "det"
    data = b.coco_json(b.CATS, [[(1, [1, 1, 20, 20])], [(3, [2, 2, 10, 10])]])
    target = {
        "split_root_images": (root / "val" / "labels.json", root / "val"),
        "instances": (root / "annotations" / "instances_val.json", root / "val"),
        "instances2017": (root / "annotations" / "instances_val2017.json", root / "val2017"),
        "roboflow": (root / "val" / "_annotations.coco.json", root / "val"),
    }[variant]
    b.det_split(root, "val", data, json_path=target[0], image_dir=target[1])
    assert "val" in CocoDetSplit.splits(root)
    split = CocoDetSplit(root, "val", ["person", "car"])
    assert len(split) == 2 and split[1][1]["labels"].tolist() == [1]


# ---- classification ---------------------------------------------------------------

def test_cls_wnid_and_readable_folders_give_the_same_classes(tmp_path):
    wnids = list(IMAGENETTE_CLASSES)
    by_wnid = b.cls_folders(tmp_path / "a", {"train": 1}, wnids)
    by_name = b.cls_folders(tmp_path / "b", {"train": 1}, [n.replace(" ", "_") for n in IMAGENETTE_CLASSES.values()])
    classes_a = ImagenetteSplit.resolve_classes(by_wnid, "train", None)
    classes_b = ImagenetteSplit.resolve_classes(by_name, "train", None)
    assert classes_a == classes_b == list(IMAGENETTE_CLASSES.values())
    a, bb = ImagenetteSplit(by_wnid, "train", classes_a), ImagenetteSplit(by_name, "train", classes_b)
    for split in (a, bb):
        by_class = {readable(path.parent.name): label for path, label in split.items}
        assert by_class == {name: k for k, name in enumerate(IMAGENETTE_CLASSES.values())}


def test_cls_other_names_sorted_and_any_image_size(tmp_path):
    root = b.cls_folders(tmp_path / "c", {"train": 2, "test": 1}, ["zebra", "apple"], size=(500, 375))
    classes = ImagenetteSplit.resolve_classes(root, "train", None)
    assert classes == ["apple", "zebra"]
    image, target = ImagenetteSplit(root, "test", classes)[1]
    assert image.shape == (3, 375, 500) and target["label"] == 1


# ---- finding the task folders -----------------------------------------------------

@pytest.mark.parametrize("names", [("mini_voc_seg", "mini_coco_det", "imagenette_160"),
                                   ("mini-voc-seg", "mini-coco-det", "imagenette-160"),
                                   ("Mini_VOC_Seg", "mini_coco_det", "imagenette160")])
def test_task_folder_name_variants(tmp_path, names):
    for name in names:
        (tmp_path / name).mkdir()
    found = [find_task_folder(task, tmp_path).name for task in TASKS.values()]
    assert found == list(names)


def test_per_task_root_overrides_data_root(tmp_path):
    root = b.challenge_root(tmp_path / "data")
    other = b.seg_flat(tmp_path / "elsewhere", {"train": 1, "val": 1})
    source = resolve_data(DataConfig(root=str(root), roots={"seg": str(other)}))
    assert source.roots == {"seg": other, "det": root / "mini_coco_det", "cls": root / "imagenette_160"}
    assert not source.synthetic


def test_default_is_synthetic_without_data_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = resolve_data(DataConfig(synthetic_train=8, synthetic_size=32))
    assert source.synthetic and all(p.is_dir() for p in source.roots.values())
    (tmp_path / "data").mkdir()
    with pytest.raises(Exception, match="no segmentation folder"):
        resolve_data(DataConfig())
