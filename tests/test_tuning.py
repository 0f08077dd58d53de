"""`run_bench.py tune`: one run per YAML setting, a table of outcomes that matches the runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cl_bench.errors import CLBenchError
from cl_bench.grid.tuning import setting_changes
from run_bench import main as run_bench


def test_setting_changes_lists_the_keys_a_yaml_sets_itself(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("base: start.yaml\ntrain:\n  lr_per_task:\n    cls: 0.0003\nstrategy:\n  name: ewc\n")
    assert setting_changes(path) == "train.lr_per_task.cls=0.0003, strategy.name=ewc"
    path.write_text("base: start.yaml\n")
    assert setting_changes(path) == "(the starting point)"


def test_tune_trains_each_setting_once_and_tabulates_its_summary(tmp_path, synthetic_root, capsys):
    start = tmp_path / "start.yaml"
    start.write_text(f"data:\n  root: {synthetic_root}\n  image_size: 32\ntrain:\n  epochs: 1\n  batch_size: 4\n"
                     "strategy:\n  name: naive\nrun:\n  logger: none\n  checkpoints: false\n")
    other = tmp_path / "lr.yaml"
    other.write_text("base: start.yaml\ntrain:\n  lr: 0.01\n")
    out = tmp_path / "search"
    assert run_bench(["tune", str(start), str(other), "--out", str(out), "--tune-split", "4"]) == 0
    table = pd.read_csv(out / "tuning.csv")
    assert list(table["setting"]) == ["start", "lr"]
    assert table.loc[0, "changes"].startswith("data.root=") and table.loc[1, "changes"] == "train.lr=0.01"
    for row in table.to_dict("records"):
        summary = json.loads((out / row["run_id"] / "summary.json").read_text())
        assert row["seg mIoU final"] == round(summary["tasks"]["seg"]["final"], 4)
        assert row["det mAP50 base"] == round(summary["secondary"]["tasks"]["det"]["base"], 4)
        low, high = summary["intervals"]["tasks"]["seg"]["mIoU"]["drop_rel_pct"]
        assert row["seg drop % interval"] == f"[{round(low, 1)}, {round(high, 1)}]"
        low, high = summary["intervals"]["tasks"]["cls"]["top1"]["final"]
        assert row["cls top1 final interval"] == f"[{round(low, 4)}, {round(high, 4)}]"
        assert row["pass (own_base)"] == ("yes" if summary["pass"] else "no")
        assert row["pass (single_task)"] == "no reference"  # no single_task run beside it
        assert summary["evaluated_on"].startswith("tune split: 4 images per task")
        assert row["evaluated on"] == "tune split"
    assert table.loc[0, "run_id"] != table.loc[1, "run_id"]
    assert "| setting | changes |" in (out / "tuning.md").read_text()
    assert run_bench(["tune", str(start), "--out", str(out), "--tune-split", "4"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert pd.read_csv(out / "tuning.csv").equals(table)  # the earlier search's row of lr is kept
    table.drop(columns=["seg drop % interval"]).to_csv(out / "tuning.csv", index=False)  # an older table
    assert run_bench(["tune", str(start), "--out", str(out), "--tune-split", "4"]) == 0
    assert pd.read_csv(out / "tuning.csv").equals(table)  # lr's row rebuilt from its summary, interval back


def test_the_tune_split_is_held_out_of_training_and_the_same_for_every_run(synthetic_root):
    from cl_bench.config import Config, DataConfig
    from scenarios.benchmark import build_benchmark, carve_tune_split

    keep, held = carve_tune_split(12, 4, seed=0)
    assert (keep, held) == carve_tune_split(12, 4, seed=0) and len(held) == 4
    assert sorted(keep + held) == list(range(12)) and held != carve_tune_split(12, 4, seed=1)[1]
    benchmark = build_benchmark(Config(DataConfig(root=str(synthetic_root), image_size=32, tune_split=4)))
    assert benchmark.evaluated_on.startswith("tune split")
    for train, test in zip(benchmark.train_stream, benchmark.test_stream):
        assert len(train.dataset) == 8 and len(test.dataset) == 4
        assert sorted(test.dataset[i][1]["index"] for i in range(4)) == held  # indices into the train split
    with pytest.raises(CLBenchError, match="data.tune_split: 12 images"):
        build_benchmark(Config(DataConfig(root=str(synthetic_root), image_size=32, tune_split=12)))
