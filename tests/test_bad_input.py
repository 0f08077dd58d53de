"""Bad input gets one line naming the file and the problem."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader

from cl_bench.config import DataConfig
from cl_bench.errors import DataError, one_line
from cl_bench.tasks import TASKS
from scenarios.coco_det import CocoDetSplit
from scenarios.imagenette import ImagenetteSplit
from scenarios.layout import resolve_data
from scenarios.voc_seg import VOC_CLASSES, VocSegSplit
from tests import builders as b

SEG = list(VOC_CLASSES)


def raises(match: str):
    return pytest.raises(DataError, match=match)


def test_missing_data_root_and_task_folder(tmp_path):
    with raises(f"{tmp_path / 'nope'}: data root not found"):
        resolve_data(DataConfig(root=str(tmp_path / "nope")))
    (tmp_path / "mini_voc_seg").mkdir()
    with raises("no detection folder"):
        resolve_data(DataConfig(root=str(tmp_path)))
    with raises("segmentation root not found"):
        resolve_data(DataConfig(root=str(tmp_path), roots={"seg": str(tmp_path / "x")}))


def test_unknown_split_lists_the_splits(tmp_path):
    root = b.seg_flat(tmp_path / "seg", {"train": 1, "val": 1})
    with raises(r"no split 'test' \(splits found: train, val\)"):
        VocSegSplit(root, "test", SEG)


def test_empty_splits(tmp_path):
    (tmp_path / "seg" / "train").mkdir(parents=True)
    with raises("empty split"):
        VocSegSplit(tmp_path / "seg", "train", SEG)
    (tmp_path / "cls" / "train").mkdir(parents=True)
    with raises("empty split"):
        ImagenetteSplit(tmp_path / "cls", "train", ["a"])
    b.det_split(tmp_path / "det", "train", b.coco_json(b.CATS, []))
    with raises("empty split"):
        CocoDetSplit(tmp_path / "det", "train", ["person"])


def test_unparseable_json(tmp_path):
    path = tmp_path / "det" / "train" / "labels.json"
    b.det_split(tmp_path / "det", "train", b.coco_json(b.CATS, [[(1, [1, 1, 5, 5])]]))
    path.write_text('{"images": [')
    with raises(f"{path}: not valid JSON"):
        CocoDetSplit(tmp_path / "det", "train", ["person"])


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_json_missing_a_section(tmp_path, key):
    data = b.coco_json(b.CATS, [[(1, [1, 1, 5, 5])]])
    del data[key]
    b.det_split(tmp_path / "det", "train", data)
    with raises(f"labels.json: COCO JSON without '{key}' list"):
        CocoDetSplit(tmp_path / "det", "train", ["person"])


def test_annotation_pointing_at_missing_image(tmp_path):
    data = b.coco_json(b.CATS, [[(1, [1, 1, 5, 5])]])
    data["annotations"][0]["image_id"] = 99
    b.det_split(tmp_path / "det", "train", data)
    with raises("annotation 1 points at missing image id 99"):
        CocoDetSplit(tmp_path / "det", "train", ["person"])


def test_image_entry_pointing_at_missing_file(tmp_path):
    b.det_split(tmp_path / "det", "train", b.coco_json(b.CATS, [[(1, [1, 1, 5, 5])]]))
    (tmp_path / "det" / "train" / "data" / "img0.jpg").unlink()
    with raises("image 1 points at missing file .*img0.jpg"):
        CocoDetSplit(tmp_path / "det", "train", ["person"])


def test_configured_class_that_does_not_exist(tmp_path):
    root = b.det_default(tmp_path / "det")
    with raises("configured detection class 'zebra' is not among its categories"):
        CocoDetSplit.resolve_classes(root, "train", ["person", "zebra"])
    cls_root = b.cls_folders(tmp_path / "cls", {"train": 1}, ["a", "b"])
    with raises("configured class 'c' has no folder"):
        ImagenetteSplit.resolve_classes(cls_root, "train", ["a", "b", "c"])


def test_corrupt_image(tmp_path):
    root = b.seg_flat(tmp_path / "seg", {"train": 2})
    bad = root / "train" / "img1.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    split = VocSegSplit(root, "train", SEG)
    split[0]
    with raises(f"{bad}: corrupt or unreadable image"):
        split[1]


def test_truncated_image(tmp_path):
    root = b.cls_folders(tmp_path / "cls", {"train": 1}, ["a"], size=(200, 150))
    path = next((root / "train" / "a").iterdir())
    from PIL import Image

    Image.effect_noise((200, 150), 60).convert("RGB").save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[:600])
    with raises(f"{path}: corrupt or unreadable image"):
        ImagenetteSplit(root, "train", ["a"])[0]


def test_mask_size_differs_from_image(tmp_path):
    root = tmp_path / "seg"
    b.write_jpg(root / "train" / "x.jpg", (40, 30))
    b.write_mask(root / "train" / "x.png", b.simple_mask(w=41, h=30))
    with raises(r"x.png: mask is 41x30 but its image is 40x30"):
        VocSegSplit(root, "train", SEG)[0]


def test_mask_values_outside_the_classes(tmp_path):
    root = tmp_path / "seg"
    b.write_jpg(root / "train" / "x.jpg")
    values = b.simple_mask()
    values[0, 0] = 21
    values[0, 1] = 128
    b.write_mask(root / "train" / "x.png", values)
    with raises(r"x.png: mask values \[21, 128\] outside 0..20 and 255"):
        VocSegSplit(root, "train", SEG)[0]


def test_image_without_mask(tmp_path):
    root = b.seg_flat(tmp_path / "seg", {"train": 1})
    b.write_jpg(root / "train" / "lonely.jpg")
    with raises("lonely.jpg: no mask lonely.png"):
        VocSegSplit(root, "train", SEG)


def test_empty_class_folder(tmp_path):
    root = b.cls_folders(tmp_path / "cls", {"train": 1}, ["a", "b"])
    (root / "train" / "c").mkdir()
    with raises(f"{root / 'train' / 'c'}: empty class folder"):
        ImagenetteSplit(root, "train", ["a", "b", "c"])


def test_worker_errors_still_print_as_one_line(tmp_path):
    root = b.seg_flat(tmp_path / "seg", {"train": 1})
    (root / "train" / "img0.jpg").write_bytes(b"garbage")
    loader = DataLoader(VocSegSplit(root, "train", SEG), num_workers=1, collate_fn=list)
    with pytest.raises(DataError) as caught:
        next(iter(loader))
    assert "\n" in str(caught.value)  # PyTorch re-raised it with the worker traceback
    line = one_line(caught.value)
    assert line.startswith(str(root / "train" / "img0.jpg")) and "corrupt" in line and "\n" not in line


def test_every_task_names_its_folder_variants_in_errors(tmp_path):
    for task in TASKS.values():
        with raises(task.folder_names[0]):
            resolve_data(DataConfig(root=str(tmp_path)), [task.name])
