"""`data prepare` against tiny copies of the official archives served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cl_bench.errors import DataError
from scenarios.coco_det import CocoDetSplit
from scenarios.download import Archive, DownloadError, Remote, download
from scenarios.imagenette import IMAGENETTE_CLASSES, ImagenetteSplit
from scenarios.prepare import Sources, prepare_data
from scenarios.voc_seg import VOC_CLASSES, VocSegSplit
from tests.http_fixture import FileServer

N_TRAIN, N_VAL = 20, 10
COCO_CLASSES = [f"class{k:02d}" for k in range(12)]  # the last two are rare


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def palette_png(seed: int) -> bytes:
    mask = np.zeros((24, 32), dtype=np.uint8)
    mask[4:20, 8:24] = 1 + seed % 20
    mask[4, 8:24] = 255
    image = Image.fromarray(mask, "P")
    image.putpalette([value for i in range(256) for value in (i, 255 - i, i // 2)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def voc_tar() -> bytes:
    """24 train and 14 val image/mask pairs, the segmentation lists, and an unrelated file."""
    root = "VOCdevkit/VOC2012"
    names = [f"2007_{i:06d}" for i in range(38)]
    members = {f"{root}/Annotations/{names[0]}.xml": b"<annotation/>"}
    for i, name in enumerate(names):
        members[f"{root}/JPEGImages/{name}.jpg"] = jpeg(i)
        members[f"{root}/SegmentationClass/{name}.png"] = palette_png(i)
    members[f"{root}/ImageSets/Segmentation/train.txt"] = "\n".join(names[:24]).encode() + b"\n"
    members[f"{root}/ImageSets/Segmentation/val.txt"] = "\n".join(names[24:]).encode() + b"\n"
    return tar_bytes(members)


def imagenette_tgz() -> bytes:
    """3 train and 2 val images per class, plus the csv of the real archive."""
    members = {"imagenette2-160/noisy_imagenette.csv": b"path,label\n"}
    for k, wnid in enumerate(sorted(IMAGENETTE_CLASSES)):
        for split, count in (("train", 3), ("val", 2)):
            for i in range(count):
                members[f"imagenette2-160/{split}/{wnid}/{wnid}_{split}{i}.JPEG"] = jpeg(100 + 10 * k + i)
    return tar_bytes(members, "w:gz")


def coco_instances() -> dict:
    """36 images with a box of the 10 frequent classes (some with crowd boxes too),
    4 with boxes of rare classes only, 1 with a crowd box only."""
    categories = [{"id": 1 + 2 * k, "name": name, "supercategory": "x"} for k, name in enumerate(COCO_CLASSES)]
    images, annotations = [], []

    def box(image_id: int, k: int, crowd: int = 0) -> None:
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1 + 2 * k,
                            "bbox": [2.0, 3.0, 10.0, 8.0], "area": 80.0, "iscrowd": crowd})

    for image_id in range(1, 42):
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 32, "height": 24})
        if image_id <= 36:
            box(image_id, image_id % 10)
            if image_id % 4 == 0:
                box(image_id, (image_id + 1) % 10, crowd=1)
        elif image_id <= 40:
            box(image_id, 10 + image_id % 2)
        else:
            box(image_id, 0, crowd=1)
    return {"info": {"description": "tiny"}, "images": images, "annotations": annotations, "categories": categories}


def coco_zip(instances: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("annotations/instances_val2017.json", json.dumps(instances))
        archive.writestr("annotations/instances_train2017.json", "{}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def release_files() -> dict[str, bytes]:
    """URL path -> content of every file the fake official servers offer."""
    instances = coco_instances()
    files = {
        "voc/VOCtrainval_11-May-2012.tar": voc_tar(),
        "fastai/imagenette2-160.tgz": imagenette_tgz(),
        "coco/annotations_trainval2017.zip": coco_zip(instances),
    }
    for image in instances["images"]:
        files[f"coco/val2017/{image['file_name']}"] = jpeg(image["id"])
    return files


@pytest.fixture
def server(release_files):
    with FileServer(release_files) as file_server:
        yield file_server


def sources_at(server: FileServer, files: dict[str, bytes]) -> Sources:
    voc, nette = "voc/VOCtrainval_11-May-2012.tar", "fastai/imagenette2-160.tgz"
    return Sources(
        voc=Remote(server.url(voc), md5=hashlib.md5(files[voc]).hexdigest()),
        imagenette=Remote(server.url(nette), sha256=hashlib.sha256(files[nette]).hexdigest(),
                          size=len(files[nette])),
        coco_annotations=Remote(server.url("coco/annotations_trainval2017.zip")),
        coco_images=server.url("coco/val2017/"),
    )


def prepare(out: Path, server: FileServer, files: dict[str, bytes], cache: Path, **options):
    return prepare_data(out, n_train=N_TRAIN, n_val=N_VAL, cache_dir=cache,
                        sources=sources_at(server, files), progress=False, **options)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_prepare_writes_the_minis_the_readers_load(server, release_files, tmp_path):
    counts = prepare(tmp_path / "data", server, release_files, tmp_path / "cache")

    expected = {"train": N_TRAIN, "val": N_VAL}
    assert counts == {"seg": expected, "det": expected, "cls": expected}
    data = tmp_path / "data"
    assert sorted(p.name for p in data.iterdir()) == ["imagenette_160", "mini_coco_det", "mini_voc_seg"]

    seg = {split: VocSegSplit(data / "mini_voc_seg", split, list(VOC_CLASSES)) for split in expected}
    assert {split: len(s) for split, s in seg.items()} == expected
    assert not {p.stem for p, _ in seg["train"].pairs} & {p.stem for p, _ in seg["val"].pairs}
    image, target = seg["train"][0]
    assert tuple(image.shape) == (3, 24, 32) and set(np.unique(target["mask"].numpy())) <= {*range(21), 255}
    source = release_files["voc/VOCtrainval_11-May-2012.tar"]
    mask = seg["val"].pairs[0][1]
    with tarfile.open(fileobj=io.BytesIO(source)) as tar:  # the mask is copied unchanged
        original = tar.extractfile(f"VOCdevkit/VOC2012/SegmentationClass/{mask.name}").read()
    assert mask.read_bytes() == original

    det_root = data / "mini_coco_det"
    classes = CocoDetSplit.resolve_classes(det_root, "train", COCO_CLASSES[:10])
    det = {split: CocoDetSplit(det_root, split, classes) for split in expected}
    assert {split: len(s) for split, s in det.items()} == expected
    assert not set(det["train"].files) & set(det["val"].files)
    assert not {f.name for f in det["train"].files} & {f.name for f in det["val"].files}
    for split in det.values():
        assert all(any(not box.iscrowd for box in boxes) for boxes in split.boxes)
        assert split.other_class == 0
        assert split.load(0)[1]["boxes"].shape[-1] == 4
    labels = json.loads((det_root / "train" / "labels.json").read_text())
    assert sorted(c["name"] for c in labels["categories"]) == COCO_CLASSES[:10]
    assert any(a["iscrowd"] for a in labels["annotations"] + json.loads(
        (det_root / "val" / "labels.json").read_text())["annotations"])

    cls_root = data / "imagenette_160"
    names = ImagenetteSplit.resolve_classes(cls_root, "train", None)
    assert names == list(IMAGENETTE_CLASSES.values())
    cls = {split: ImagenetteSplit(cls_root, split, names) for split in expected}
    assert {split: len(s) for split, s in cls.items()} == expected
    assert cls["train"].report().stats["images per class"] == dict.fromkeys(names, N_TRAIN // 10)
    assert not {p.name for p, _ in cls["train"].items} & {p.name for p, _ in cls["val"].items}


def test_same_seed_same_selection_from_the_cache(server, release_files, tmp_path):
    cache = tmp_path / "cache"
    prepare(tmp_path / "a", server, release_files, cache)
    downloaded = len(server.requests)
    assert downloaded == 3 + N_TRAIN + N_VAL  # three archives and the chosen COCO images

    prepare(tmp_path / "b", server, release_files, cache)
    assert len(server.requests) == downloaded  # everything came from the cache
    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    for split in ("train", "val"):
        label_path = Path("mini_coco_det", split, "labels.json")
        assert (tmp_path / "a" / label_path).read_bytes() == (tmp_path / "b" / label_path).read_bytes()

    prepare(tmp_path / "c", server, release_files, cache, seed=1)
    for task in ("mini_voc_seg", "mini_coco_det", "imagenette_160"):
        assert listing(tmp_path / "a" / task) != listing(tmp_path / "c" / task)


def test_rerun_keeps_a_finished_folder_and_replaces_one_of_other_settings(server, release_files, tmp_path):
    out, cache = tmp_path / "data", tmp_path / "cache"
    (out / ".mini_voc_seg.partial" / "train").mkdir(parents=True)  # left by a killed run
    first = prepare(out, server, release_files, cache)
    assert sorted(p.name for p in out.iterdir()) == ["imagenette_160", "mini_coco_det", "mini_voc_seg"]
    (out / "mini_voc_seg" / "sentinel").write_text("kept while the settings match")
    requests = len(server.requests)
    assert prepare(out, server, release_files, cache) == first
    assert len(server.requests) == requests
    assert (out / "mini_voc_seg" / "sentinel").exists()

    prepare(out, server, release_files, cache, seed=3)
    assert not (out / "mini_voc_seg" / "sentinel").exists()
    assert sorted(p.name for p in out.iterdir()) == ["imagenette_160", "mini_coco_det", "mini_voc_seg"]


def test_refuses_to_overwrite_a_folder_it_did_not_make(server, release_files, tmp_path):
    out = tmp_path / "data"
    (out / "mini_voc_seg" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="mini_voc_seg: exists but was not made by 'data prepare'"):
        prepare(out, server, release_files, tmp_path / "cache")
    assert server.requests == []


def test_chosen_detection_classes(server, release_files, tmp_path):
    chosen = COCO_CLASSES[1:11]  # a rare class in, the most frequent one out
    prepare(tmp_path / "data", server, release_files, tmp_path / "cache", det_classes=chosen)
    for split in ("train", "val"):
        labels = json.loads((tmp_path / "data" / "mini_coco_det" / split / "labels.json").read_text())
        assert sorted(c["name"] for c in labels["categories"]) == chosen
        assert {a["category_id"] for a in labels["annotations"]} <= {c["id"] for c in labels["categories"]}

    with pytest.raises(DataError, match=r"instances_val2017\.json in .*annotations_trainval2017\.zip: "
                                        r"unknown detection class 'nope'"):
        prepare(tmp_path / "other", server, release_files, tmp_path / "cache", det_classes=["class01", "nope"])
    with pytest.raises(DataError, match="only 4 candidates, 30 needed"):
        prepare(tmp_path / "rare", server, release_files, tmp_path / "cache", det_classes=COCO_CLASSES[10:])
    assert list((tmp_path / "other").iterdir()) == []  # no half-written folder left


# --- downloads -------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 400


@pytest.fixture
def payload_server():
    with FileServer({"file.bin": PAYLOAD}) as file_server:
        yield file_server


def test_download_is_cached(payload_server, tmp_path):
    remote = Remote(payload_server.url("file.bin"), md5=hashlib.md5(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    dest = tmp_path / "file.bin"
    assert download(remote, dest, progress=False).read_bytes() == PAYLOAD
    download(remote, dest, progress=False)
    assert payload_server.paths() == ["file.bin"]

    dest.write_bytes(b"corrupt")  # a cached file that fails its check is fetched again
    assert download(remote, dest, progress=False).read_bytes() == PAYLOAD
    assert len(payload_server.requests) == 2


def test_truncated_download_resumes_with_a_range_request(payload_server, tmp_path):
    payload_server.truncate["file.bin"] = 1
    dest = download(Remote(payload_server.url("file.bin"), sha256=hashlib.sha256(PAYLOAD).hexdigest()),
                    tmp_path / "file.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert payload_server.requests == [("file.bin", None), ("file.bin", f"bytes={len(PAYLOAD) // 2}-")]
    assert not (tmp_path / "file.bin.part").exists()


def test_download_that_keeps_breaking_is_reported_then_resumed(payload_server, tmp_path):
    payload_server.truncate["file.bin"] = 99
    remote = Remote(payload_server.url("file.bin"), md5=hashlib.md5(PAYLOAD).hexdigest())
    with pytest.raises(DownloadError, match=r"file\.bin: interrupted after \d+ of \d+ bytes; run again to resume"):
        download(remote, tmp_path / "file.bin", progress=False)
    part = tmp_path / "file.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "file.bin").exists()

    resume_at = part.stat().st_size
    payload_server.truncate.clear()
    assert download(remote, tmp_path / "file.bin", progress=False).read_bytes() == PAYLOAD
    assert payload_server.requests[-1] == ("file.bin", f"bytes={resume_at}-")


def test_server_ignoring_range_restarts_cleanly(payload_server, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(b"x" * 1000)  # not a prefix of the file
    payload_server.ignore_range.add("file.bin")
    dest = download(Remote(payload_server.url("file.bin"), size=len(PAYLOAD)), tmp_path / "file.bin", progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert payload_server.requests == [("file.bin", "bytes=1000-")]


def test_checksum_or_size_mismatch_is_an_error(payload_server, tmp_path):
    with pytest.raises(DownloadError, match=f"md5 is {hashlib.md5(PAYLOAD).hexdigest()}, expected 0+"):
        download(Remote(payload_server.url("file.bin"), md5="0" * 32), tmp_path / "file.bin", progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError, match=f"announces {len(PAYLOAD)} bytes, expected 5"):
        download(Remote(payload_server.url("file.bin"), size=5), tmp_path / "file.bin", progress=False)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(Remote(payload_server.url("missing.bin")), tmp_path / "missing.bin", progress=False)


def test_unreachable_server_fails_fast_with_a_clear_message(release_files, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/imagenette2-160.tgz"
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        prepare_data(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False,
                     sources=Sources(voc=Remote(url), imagenette=Remote(url), coco_annotations=Remote(url),
                                     coco_images=url))
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message and f"cannot download {url}" in message
    assert "copy the datasets into the data folder by hand" in message


# --- safe extraction -------------------------------------------------------------------------

def test_archive_refuses_members_escaping_the_target(tmp_path):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_bytes({"../evil": b"pwned", "/abs/evil": b"pwned", "ok.txt": b"fine"}))
    target = tmp_path / "target" / "inner"
    with Archive(archive) as tar:
        with pytest.raises(DataError, match=r"evil\.tar: member '\.\./evil' escapes the target folder"):
            tar.extract({"../evil": "../evil"}, target)
        with pytest.raises(DataError, match="member '/abs/evil' has an absolute path"):
            tar.extract({"/abs/evil": "evil"}, target)
        with pytest.raises(DataError, match="member 'ok.txt' would be written to .*outside"):
            tar.extract({"ok.txt": "../ok.txt"}, target)
        tar.extract({"ok.txt": "sub/ok.txt"}, target)
    assert (target / "sub" / "ok.txt").read_bytes() == b"fine"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["evil.tar", "ok.txt"]


def test_archive_refuses_links(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, link in (("dir", tarfile.SYMTYPE, str(tmp_path)), ("hard", tarfile.LNKTYPE, "dir")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            tar.addfile(info)
    archive = tmp_path / "links.tar"
    archive.write_bytes(buffer.getvalue())
    with Archive(archive) as tar:
        assert tar.names() == []
        for name in ("dir", "hard"):
            with pytest.raises(DataError, match=f"member '{name}' is a link"):
                tar.extract({name: "x"}, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_zip_refuses_escaping_members(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../evil", b"pwned")
    with Archive(archive) as zf, pytest.raises(DataError, match=r"evil\.zip: member '\.\./evil' escapes"):
        zf.read("../evil")
