"""The Avalanche task-incremental benchmark built from the three readers."""

from __future__ import annotations

import pytest
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from torch.utils.data import DataLoader

from cl_bench.config import Config, DataConfig
from cl_bench.errors import CLBenchError
from cl_bench.tasks.batch import MultiTaskTargets, collate_multitask
from scenarios.benchmark import build_benchmark


def config(root, order=("seg", "det", "cls"), size=32) -> Config:
    return Config(DataConfig(root=str(root), order=list(order), image_size=size))


def first_batch(dataset, batch_size=4, **kwargs):
    return next(iter(DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate_fn, **kwargs)))


def test_one_experience_per_task_with_task_labels_in_order(synthetic_root):
    bm = build_benchmark(config(synthetic_root, order=("cls", "seg", "det")))
    assert bm.tasks == ["cls", "seg", "det"]
    for stream in (bm.train_stream, bm.test_stream):
        assert [e.current_experience for e in stream] == [0, 1, 2]
        assert [e.task_label for e in stream] == [0, 1, 2]
        for exp in stream:
            assert isinstance(exp.dataset, AvalancheDataset)
            assert exp.dataset.collate_fn is collate_multitask
            assert set(exp.dataset.targets_task_labels.uniques) == {exp.task_label}
    assert [len(e.dataset) for e in bm.train_stream] == [12, 12, 12]
    assert [len(e.dataset) for e in bm.test_stream] == [6, 6, 6]


def test_task_names_accept_long_forms_and_must_be_a_permutation(synthetic_root):
    bm = build_benchmark(config(synthetic_root, order=("detection", "classification", "segmentation")))
    assert bm.tasks == ["det", "cls", "seg"]
    with pytest.raises(CLBenchError, match="not a permutation"):
        build_benchmark(config(synthetic_root, order=("seg", "det")))


def test_samples_and_minibatches(synthetic_root):
    bm = build_benchmark(config(synthetic_root))
    seg, det, cls = (e.dataset for e in bm.train_stream)
    images, targets, labels = first_batch(det)
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [1, 1, 1, 1]
    assert isinstance(targets, MultiTaskTargets) and len(targets) == 4 and list(targets) == ["det"]
    det_targets = targets["det"]
    assert det_targets.rows.tolist() == [0, 1, 2, 3]
    assert len(det_targets["boxes"]) == 4 and all(b.shape[1] == 4 for b in det_targets["boxes"])
    assert det_targets.orig_size.tolist() == [[64, 64]] * 4
    assert first_batch(seg)[1]["seg"]["mask"].shape == (4, 32, 32)
    assert first_batch(cls)[1]["cls"]["label"].shape == (4,)


def test_non_classification_data_has_no_fake_targets(synthetic_root):
    bm = build_benchmark(config(synthetic_root))
    for exp in bm.train_stream:
        assert not hasattr(exp.dataset, "targets")


def test_a_replay_style_mixed_minibatch_collates_with_one_collate(synthetic_root):
    bm = build_benchmark(config(synthetic_root))
    seg, det, cls = (e.dataset for e in bm.train_stream)
    mixed = cls.concat(seg).concat(det)  # Avalanche keeps the first dataset's collate
    images, targets, labels = first_batch(mixed, batch_size=36, shuffle=True,
                                          generator=torch.Generator().manual_seed(0))
    assert images.shape[0] == 36 and sorted(targets) == ["cls", "det", "seg"]
    for name, label in (("seg", 0), ("det", 1), ("cls", 2)):
        rows = targets[name].rows
        assert (labels[rows] == label).all() and len(rows) == 12
    moved = targets.to("cpu")
    assert torch.equal(moved["seg"]["mask"], targets["seg"]["mask"])


def test_train_stream_augments_and_test_stream_does_not(synthetic_root):
    bm = build_benchmark(config(synthetic_root))
    train, test = bm.train_stream[0].dataset, bm.test_stream[0].dataset
    torch.manual_seed(0)
    a = train[0][0]
    b = train[0][0]
    assert not torch.equal(a, b)
    assert torch.equal(test[0][0], test[0][0])
    assert torch.equal(train.eval()[0][0], train.eval()[0][0])


def test_any_split_name(tmp_path, synthetic_root):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    for task in ("mini_voc_seg", "mini_coco_det", "imagenette_160"):
        (root / task / "val").rename(root / task / "test")
    cfg = config(root)
    cfg.data.test_split = "test"
    bm = build_benchmark(cfg)
    assert [len(e.dataset) for e in bm.test_stream] == [6, 6, 6]
