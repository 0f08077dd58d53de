"""Pieces every reader shares: image decoding, file listing, the split dataset base."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from cl_bench.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def open_pil(path: Path) -> Image.Image:
    """Open and fully decode an image, or raise a DataError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except FileNotFoundError:
        raise DataError.at(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError.at(path, f"corrupt or unreadable image ({error})") from None


def as_rgb(image: Image.Image, path: Path) -> Image.Image:
    """``image`` as 8-bit RGB. 16-bit greyscale (``I;16*``, and ``I``, as Pillow opens a 16-bit PNG)
    is scaled to 8 bit (65535 -> 255): ``convert("RGB")`` would clip it to white."""
    if image.mode.startswith("I;16") or image.mode == "I":
        values = np.asarray(image).astype(np.float64)
        image = Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        raise DataError.at(path, "floating-point image (mode F); expected an 8- or 16-bit image")
    return image.convert("RGB")


def read_rgb(path: Path) -> tv_tensors.Image:
    """Decode an image file as a uint8 RGB tv_tensors.Image (3 x H x W)."""
    return tv_tensors.Image(F.pil_to_tensor(as_rgb(open_pil(path), path)))


def list_subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def missing_split(task_root: Path, split: str, found: list[str]) -> DataError:
    listed = ", ".join(found) if found else "none"
    return DataError.at(task_root, f"no split '{split}' (splits found: {listed})")


@dataclass
class SplitReport:
    """What `data check` prints about one split: counts, statistics, problems."""

    images: int
    classes: int
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class TaskSplit(Dataset):
    """One split of one task's data.

    ``__getitem__`` returns ``(image, target)``: a uint8 tv_tensors.Image at the
    original size and a dict with ``task``, ``index``, ``orig_size`` (H, W) and
    the task's own fields (tv_tensors, so transforms move them with the image).
    After ``enable_cache()`` each sample is decoded once and kept (transforms
    never modify their inputs, so augmentation still differs every epoch).
    Subclasses implement ``__len__``, ``source(i)`` and ``load_target(i, image)``.
    """

    task: str = ""

    def __init__(self, task_root: Path, split: str, classes: list[str]):
        self.task_root = Path(task_root)
        self.split = split
        self.classes = list(classes)
        self.warnings: list[str] = []
        self._cache: dict[int, tuple[tv_tensors.Image, dict[str, Any]]] | None = None

    def enable_cache(self) -> None:
        """Keep every decoded sample in memory from its first read on."""
        if self._cache is None:
            self._cache = {}

    def source(self, index: int) -> Path:
        """The image file of sample ``index``."""
        raise NotImplementedError

    def load_target(self, index: int, image: tv_tensors.Image) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        image = read_rgb(self.source(index))
        target = {"task": self.task, "index": index, "orig_size": tuple(image.shape[-2:])}
        target.update(self.load_target(index, image))
        return image, target

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        if self._cache is None:
            return self.load(index)
        if index not in self._cache:
            self._cache[index] = self.load(index)
        return self._cache[index]

    def report(self) -> SplitReport:
        """Counts and statistics from the annotations alone (no decoding)."""
        raise NotImplementedError

    def training_problem(self) -> str | None:
        """Why this split, as a training split, would train nothing (one line naming its file), or None."""
        return None


def as_index_array(mask: Image.Image, path: Path) -> np.ndarray:
    """A mask image as an array of class indices (palette/grey images as stored)."""
    if mask.mode in ("P", "L"):
        return np.asarray(mask, dtype=np.uint8)
    if mask.mode in ("I", "I;16"):
        return np.asarray(mask).astype(np.int64)
    raise DataError.at(path, f"mask has mode {mask.mode}; expected a palette or greyscale PNG of class indices")

