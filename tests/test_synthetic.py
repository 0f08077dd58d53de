"""The embedded default: deterministic, real formats, read by the real readers."""

from __future__ import annotations

import hashlib
import json

from PIL import Image

from scenarios.synthetic import ensure_synthetic, write_synthetic


def digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_by_seed(tmp_path):
    a = write_synthetic(tmp_path / "a", seed=3, size=32, n_train=4, n_val=2)
    b = write_synthetic(tmp_path / "b", seed=3, size=32, n_train=4, n_val=2)
    c = write_synthetic(tmp_path / "c", seed=4, size=32, n_train=4, n_val=2)
    assert digest(a) == digest(b) != digest(c)


def test_real_file_formats(synthetic_root):
    mask = Image.open(next((synthetic_root / "mini_voc_seg" / "train").glob("*.png")))
    assert mask.mode == "P"
    labels = json.loads((synthetic_root / "mini_coco_det" / "train" / "labels.json").read_text())
    assert {"images", "annotations", "categories"} <= set(labels)
    assert len(list((synthetic_root / "imagenette_160" / "train").iterdir())) == 10
    image = Image.open(next((synthetic_root / "mini_coco_det" / "train" / "data").iterdir()))
    assert image.format == "JPEG"


def test_cached_once(monkeypatch, tmp_path):
    monkeypatch.setenv("CL_BENCH_CACHE", str(tmp_path))
    first = ensure_synthetic(seed=1, size=32, n_train=4)
    stamp = (first / "mini_coco_det" / "train" / "labels.json").stat().st_mtime_ns
    assert ensure_synthetic(seed=1, size=32, n_train=4) == first
    assert (first / "mini_coco_det" / "train" / "labels.json").stat().st_mtime_ns == stamp
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".tmp")]
