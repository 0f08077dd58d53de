"""`data prepare`: the three mini datasets, built from the official public releases.

- ``mini_voc_seg/{train,val}/NAME.jpg + NAME.png``: images of VOC2012's
  ``ImageSets/Segmentation/train.txt`` and ``val.txt``, masks copied unchanged.
- ``mini_coco_det/{train,val}/labels.json + data/*.jpg``: disjoint images of
  COCO ``instances_val2017.json`` with at least one non-crowd box of the chosen
  classes (default: the 10 categories with the most non-crowd boxes in that
  file); only those classes' annotations (crowd ones included) are kept. Only
  the chosen images are downloaded, one by one.
- ``imagenette_160/{train,val}/<wnid>/*.JPEG``: a tenth of the count per class.

Selection is deterministic: sorted candidates sampled with ``random.Random(seed)``.
Each folder is built in a hidden ``.NAME.partial`` folder and renamed into
place, so an interrupted run is simply run again (downloads resume from the cache).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from cl_bench.errors import CLBenchError, DataError
from scenarios.download import Archive, Remote, default_cache_dir, download, download_many
from scenarios.imagenette import IMAGENETTE_CLASSES

T = TypeVar("T")

SEG_DIR, DET_DIR, CLS_DIR = "mini_voc_seg", "mini_coco_det", "imagenette_160"
MARKER = ".prepared.json"  # settings and counts of a finished folder
VOC_ROOT = "VOCdevkit/VOC2012"
IMAGENETTE_ROOT = "imagenette2-160"
COCO_MEMBER = "annotations/instances_val2017.json"
COCO_TOP_K = 10


@dataclass(frozen=True)
class Sources:
    """Where the official releases are (md5 values as torchvision publishes them)."""

    # torchvision's mirror of host.robots.ox.ac.uk/pascal/VOC/voc2012/ (same file)
    voc: Remote = Remote("https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                         md5="6cd6e144f989b92b3379bac3b3de84fd")
    imagenette: Remote = Remote("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
                                md5="e793b78cc4c9e9a4ccc0c1155377a412")
    coco_annotations: Remote = Remote("http://images.cocodataset.org/annotations/annotations_trainval2017.zip")
    coco_images: str = "http://images.cocodataset.org/val2017"  # + "/" + file_name


def prepare_data(out: Path, *, seed: int = 0, n_train: int = 240, n_val: int = 60,
                 det_classes: list[str] | None = None, cache_dir: Path | None = None,
                 sources: Sources | None = None, progress: bool = True) -> dict[str, dict[str, int]]:
    """Download (cached) and write the three minis under ``out``; images per task and split."""
    if min(n_train, n_val) < 10:
        raise CLBenchError("data prepare: n_train and n_val must be at least 10 (Imagenette takes a tenth per class)")
    out, sources = Path(out), sources or Sources()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    classes = list(det_classes) if det_classes else None
    sizes = {"seed": seed, "n_train": n_train, "n_val": n_val}
    for folder in (DET_DIR, CLS_DIR, SEG_DIR):  # refuse before downloading anything
        _recorded(out / folder)

    def fetch(remote: Remote) -> Path:
        return download(remote, cache / remote.filename, progress=progress)

    det = _build(out / DET_DIR, {**sizes, "classes": classes}, lambda tmp: _write_coco(
        tmp, fetch(sources.coco_annotations), sources.coco_images, cache, random.Random(seed),
        n_train, n_val, classes, progress))
    cls = _build(out / CLS_DIR, sizes, lambda tmp: _write_imagenette(
        tmp, fetch(sources.imagenette), random.Random(seed), n_train, n_val))
    seg = _build(out / SEG_DIR, sizes, lambda tmp: _write_voc(
        tmp, fetch(sources.voc), random.Random(seed), n_train, n_val))
    return {"seg": seg, "det": det, "cls": cls}


def _build(final: Path, settings: dict[str, Any], write: Callable[[Path], dict[str, int]]) -> dict[str, int]:
    """Keep ``final`` if prepared with these settings, else write it anew in a temp folder
    renamed into place (removed on errors; a leftover of a killed run is removed next time)."""
    recorded = _recorded(final)
    if recorded is not None and recorded.get("settings") == settings:
        return recorded["counts"]
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        counts = write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / MARKER).write_text(json.dumps({"settings": settings, "counts": counts}, indent=1))
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    return counts


def _recorded(final: Path) -> dict[str, Any] | None:
    """What made ``final`` (None if it does not exist); a folder not made here is refused."""
    if not final.exists():
        return None
    try:
        return json.loads((final / MARKER).read_text())
    except (OSError, ValueError):
        raise DataError.at(final, "exists but was not made by 'data prepare'; move it away to prepare it") from None


def _sample(rng: random.Random, items: Sequence[T], n: int, where: str | Path, what: str) -> list[T]:
    if len(items) < n:
        raise DataError.at(where, f"{what}: only {len(items)} candidates, {n} needed")
    return rng.sample(list(items), n)


def _write_voc(tmp: Path, tar: Path, rng: random.Random, n_train: int, n_val: int) -> dict[str, int]:
    with Archive(tar) as archive:
        lists = {split: _voc_list(archive, split) for split in ("train", "val")}
        in_train = set(lists["train"])
        lists["val"] = [name for name in lists["val"] if name not in in_train]
        files: dict[str, str] = {}
        for split, n in (("train", n_train), ("val", n_val)):
            for name in _sample(rng, lists[split], n, tar, f"ImageSets/Segmentation/{split}.txt"):
                files[f"{VOC_ROOT}/JPEGImages/{name}.jpg"] = f"{split}/{name}.jpg"
                files[f"{VOC_ROOT}/SegmentationClass/{name}.png"] = f"{split}/{name}.png"
        archive.extract(files, tmp)
    return {"train": n_train, "val": n_val}


def _voc_list(archive: Archive, split: str) -> list[str]:
    text = archive.read(f"{VOC_ROOT}/ImageSets/Segmentation/{split}.txt").decode("utf-8")
    return sorted({line.split()[0] for line in text.splitlines() if line.strip()})


def _write_imagenette(tmp: Path, tgz: Path, rng: random.Random, n_train: int, n_val: int) -> dict[str, int]:
    with Archive(tgz) as archive:
        folders: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name in archive.names():
            parts = PurePosixPath(name).parts
            if len(parts) == 4 and parts[0] == IMAGENETTE_ROOT and not parts[3].startswith("."):
                folders[parts[1], parts[2]].append(name)
        files: dict[str, str] = {}
        counts: dict[str, int] = {}
        for split, n in (("train", n_train), ("val", n_val)):
            for wnid in sorted(IMAGENETTE_CLASSES):
                folder = f"{IMAGENETTE_ROOT}/{split}/{wnid}"
                for name in _sample(rng, sorted(folders[split, wnid]), n // 10, tgz, folder):
                    files[name] = f"{split}/{wnid}/{PurePosixPath(name).name}"
            counts[split] = n // 10 * len(IMAGENETTE_CLASSES)
        archive.extract(files, tmp)
    return counts


def _write_coco(tmp: Path, zip_path: Path, images_url: str, cache: Path, rng: random.Random,
                n_train: int, n_val: int, det_classes: list[str] | None, progress: bool) -> dict[str, int]:
    where = f"{COCO_MEMBER} in {zip_path}"
    with Archive(zip_path) as archive:
        try:
            data = json.loads(archive.read(COCO_MEMBER))
        except ValueError as error:
            raise DataError.at(where, f"not valid JSON ({error})") from None
    category_ids = _coco_category_ids(data, det_classes, where)
    annotations = [a for a in data["annotations"] if a["category_id"] in category_ids]
    eligible = sorted({a["image_id"] for a in annotations
                       if not a.get("iscrowd") and a["bbox"][2] >= 1 and a["bbox"][3] >= 1})
    chosen = _sample(rng, eligible, n_train + n_val, where, "images with a box of the chosen classes")
    images = {image["id"]: image for image in data["images"]}
    for image_id in chosen:
        _check_file_name(images[image_id]["file_name"], where)
    cached = cache / "coco_val2017"
    download_many([(Remote(f"{images_url.rstrip('/')}/{images[i]['file_name']}"), cached / images[i]["file_name"])
                   for i in sorted(chosen)], progress=progress, desc="COCO val2017 images")
    for split, ids in (("train", sorted(chosen[:n_train])), ("val", sorted(chosen[n_train:]))):
        (tmp / split / "data").mkdir(parents=True)
        for image_id in ids:
            name = images[image_id]["file_name"]
            shutil.copyfile(cached / name, tmp / split / "data" / name)
        keep = set(ids)
        labels = {key: data[key] for key in ("info", "licenses") if key in data}
        labels.update(images=[images[i] for i in ids],
                      annotations=[a for a in annotations if a["image_id"] in keep],
                      categories=[c for c in data["categories"] if c["id"] in category_ids])
        (tmp / split / "labels.json").write_text(json.dumps(labels))
    return {"train": n_train, "val": n_val}


def _coco_category_ids(data: dict[str, Any], requested: list[str] | None, where: str) -> set[int]:
    """Ids of the requested categories, or of the ``COCO_TOP_K`` with the most non-crowd boxes."""
    ids = {c["name"]: c["id"] for c in data["categories"]}
    if requested:
        unknown = [name for name in requested if name not in ids]
        if unknown:
            raise DataError.at(where, f"unknown detection class {', '.join(map(repr, unknown))} "
                                      f"(categories: {', '.join(sorted(ids))})")
        return {ids[name] for name in requested}
    names = {c["id"]: c["name"] for c in data["categories"]}
    counts = Counter(names[a["category_id"]] for a in data["annotations"] if not a.get("iscrowd"))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {ids[name] for name, _ in ranked[:COCO_TOP_K]}


def _check_file_name(name: str, where: str) -> None:
    """File names become URLs and paths: a plain name only."""
    if PurePosixPath(name).name != name or "\\" in name or name in ("", ".", ".."):
        raise DataError.at(where, f"image file_name {name!r} is not a plain file name")
