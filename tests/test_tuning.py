"""`run_bench.py tune`: one run per YAML setting, a table of outcomes that matches the runs."""

from __future__ import annotations

import json

import pandas as pd

from cl_bench.tuning import setting_changes
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
    assert run_bench(["tune", str(start), str(other), "--out", str(out)]) == 0
    table = pd.read_csv(out / "tuning.csv")
    assert list(table["setting"]) == ["start", "lr"]
    assert table.loc[0, "changes"].startswith("data.root=") and table.loc[1, "changes"] == "train.lr=0.01"
    for row in table.to_dict("records"):
        summary = json.loads((out / row["run_id"] / "summary.json").read_text())
        assert row["seg mIoU final"] == round(summary["tasks"]["seg"]["final"], 4)
        assert row["det mAP50 base"] == round(summary["secondary"]["tasks"]["det"]["base"], 4)
        assert row["pass"] == ("yes" if summary["pass"] else "no")
    assert table.loc[0, "run_id"] != table.loc[1, "run_id"]
    assert "| setting | changes |" in (out / "tuning.md").read_text()
    assert run_bench(["tune", str(start), "--out", str(out)]) == 0
    assert "already finished" in capsys.readouterr().out
