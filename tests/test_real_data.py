"""The real minis (``$CL_BENCH_REAL_DATA``): every file loads; `data check` agrees
with the published counts. Skipped when the folder is absent."""

from __future__ import annotations

from torch.utils.data import DataLoader

from cl_bench.config import Config, DataConfig
from run_bench import main
from scenarios.benchmark import build_benchmark


def test_every_image_of_every_split_loads_through_the_benchmark(real_data_root):
    bm = build_benchmark(Config(DataConfig(root=str(real_data_root), image_size=64)))
    seen = {}
    for stream in (bm.train_stream, bm.test_stream):
        for exp in stream:
            loader = DataLoader(exp.dataset, batch_size=32, collate_fn=exp.dataset.collate_fn, num_workers=2)
            count = 0
            for images, targets, labels in loader:
                assert images.shape[1:] == (3, 64, 64)
                assert (labels == exp.task_label).all()
                count += len(targets)
            seen[(stream.name, bm.tasks[exp.task_label])] = count
    assert seen == {(s, t): (240 if s == "train" else 60) for s in ("train", "test") for t in ("seg", "det", "cls")}
    assert len(bm.classes["det"]) == 10 and "person" in bm.classes["det"]


def test_data_check_reports_the_real_minis(real_data_root, capsys):
    assert main(["data", "check", "--data-root", str(real_data_root)]) == 0
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines()[2:9]]
    counts = {(row[0], row[1]): int(row[2]) for row in table[1:]}
    assert counts == {(t, s): (240 if s == "train" else 60)
                      for t in ("segmentation", "detection", "classification") for s in ("train", "val")}
    assert "no problems found" in out
