"""The two readings of the 5 % rule, the export score that goes with them, and the figures' palette,
on results folders written by hand (no training)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from cl_bench.config import Config
from cl_bench.dataclass_io import to_dict
from cl_bench.report.collect import load_results
from cl_bench.report.plots import colours, markers
from cl_bench.report.selection import select_run, verdict_lines
from cl_bench.results import primary_metrics, runs_row, secondary_metrics, upsert_run, write_run_results
from cl_bench.rules import reference_drop_interval, reference_finals, single_task_verdict
from cl_bench.schedules import get_schedule

ORDER = ["seg", "det", "cls"]


def _config(strategy: str, seed: int, image_size: int = 320) -> dict:
    config = Config()
    config.data.image_size, config.train.epochs, config.train.epochs_per_task = image_size, 20, {"seg": 40, "det": 60}
    config.strategy.name, config.run.seed, config.run.out = strategy, seed, "elsewhere"
    return yaml.safe_load(yaml.safe_dump(to_dict(config)))


def _write_run(root: Path, strategy: str, seed: int, R: list[list[float]], schedule: str = "sequential",
               image_size: int = 320) -> str:
    """A finished run whose primary (and secondary) metric matrix is ``R`` (rows: after each stage)."""
    run_id = f"{strategy}_s{seed}_{image_size}"
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    config = _config(strategy, seed, image_size)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    records = [{"run_id": run_id, "strategy": strategy, "seed": seed, "order": ",".join(ORDER), "train_exp": i,
                "eval_task": task, "metric": metrics[task], "value": value}
               for metrics in (primary_metrics(), secondary_metrics())
               for i, row in enumerate(R) for task, value in zip(ORDER, row) if not math.isnan(value)]
    reference = reference_finals(root, config, primary_metrics())
    summary = write_run_results(run_dir, pd.DataFrame(records), ORDER,
                                {"run_id": run_id, "strategy": strategy, "seed": seed, "order": ORDER},
                                schedule=schedule, reference=reference)
    upsert_run(root / "runs.csv", runs_row(summary, {
        "run_id": run_id, "strategy": strategy, "seed": seed, "order": ",".join(ORDER), "params": 1000,
        "backbone": config["model"]["backbone"], "bn_policy": config["train"]["bn_policy"],
        "image_size": image_size, "epochs": "seg:40;det:60;cls:20", "train_time_s": 1.0}))
    return run_id


def _single_task(seg: float, det: float, cls: float) -> list[list[float]]:
    return [[seg, math.nan, math.nan], [math.nan, det, math.nan], [math.nan, math.nan, cls]]


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two single-task seeds (mean finals seg 0.42, det 0.10, cls 0.90); ``lazy`` learns detection to 10 % of
    that and keeps everything it learned; ``good`` learns each task nearly as well and keeps it; ``orphan``
    ran at another image size, which has no single-task run."""
    _write_run(tmp_path, "single_task", 0, _single_task(0.40, 0.10, 0.90), "single_task")
    _write_run(tmp_path, "single_task", 1, _single_task(0.44, 0.10, 0.90), "single_task")
    _write_run(tmp_path, "lazy", 0, [[0.42, 0.0, 0.1], [0.42, 0.010, 0.1], [0.42, 0.010, 0.90]])
    _write_run(tmp_path, "good", 0, [[0.42, 0.0, 0.1], [0.41, 0.100, 0.1], [0.41, 0.097, 0.89]])
    _write_run(tmp_path, "orphan", 0, [[0.42, 0.0, 0.1], [0.42, 0.100, 0.1], [0.42, 0.100, 0.90]], image_size=128)
    return tmp_path


def test_single_task_verdict_by_hand():
    verdict = single_task_verdict({"seg": 0.399, "det": 0.010, "cls": 0.95}, {"seg": 0.42, "det": 0.10, "cls": 0.90},
                                  5.0, ["a", "b"])
    seg, det, cls = (verdict["tasks"][t] for t in ORDER)
    assert seg["drop_rel_pct"] == pytest.approx(5.0) and seg["pass_rel"]  # exactly 5 %: passes
    assert det["ratio"] == pytest.approx(0.1) and det["drop_rel_pct"] == pytest.approx(90.0) and not det["pass_rel"]
    assert det["drop_abs_pts"] == pytest.approx(9.0) and not det["pass_abs"]
    assert cls["drop_rel_pct"] == pytest.approx(-100 * 0.05 / 0.90) and cls["at_or_above_reference"]
    assert verdict["pass"] is False and verdict["bonus"] is False and verdict["reference_runs"] == ["a", "b"]
    missing = single_task_verdict({"seg": 0.4}, None, 5.0)
    assert missing["status"] == "no reference" and missing["pass"] is None


def test_reference_drop_interval_is_welch_over_both_groups_of_seeds():
    finals, references = [0.30, 0.34, 0.32], [0.40, 0.44, 0.42]
    low, high = reference_drop_interval(finals, references)
    a, b = np.array(references), np.array(finals)
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)  # Welch–Satterthwaite
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (low, high) == pytest.approx(((0.10 - half) / 0.42 * 100, (0.10 + half) / 0.42 * 100))
    one = stats.t.ppf(0.975, 2) * b.std(ddof=1) / math.sqrt(3)  # one reference seed: held fixed
    assert reference_drop_interval(finals, [0.42]) == pytest.approx(((0.10 - one) / 0.42 * 100,
                                                                     (0.10 + one) / 0.42 * 100))
    assert all(math.isnan(v) for v in reference_drop_interval([0.3], references))


def test_a_run_that_learns_little_passes_own_base_only_and_is_never_best(folder):
    results = load_results(folder)
    runs = results.runs.set_index("strategy")
    assert results.default_rule == "single_task"
    assert bool(runs.loc["lazy", "pass_own_base"]) and runs.loc["lazy", "pass_single_task"] == 0
    assert runs.loc["lazy", "st_drop_rel_pct_mAP"] == pytest.approx(90.0)
    assert runs.loc["lazy", "final_vs_single_task"] == pytest.approx((1 + 0.1 + 1) / 3)
    assert bool(runs.loc["good", "pass_own_base"]) and runs.loc["good", "pass_single_task"] == 1
    assert runs.loc["good", "plasticity"] == pytest.approx((0.42 / 0.42 + 0.10 / 0.10 + 0.89 / 0.90) / 3)
    assert runs.loc["good", "stability"] == pytest.approx((0.41 / 0.42 + 0.097 / 0.10) / 2)
    assert runs.loc["lazy", "stability"] == pytest.approx(1.0)  # keeps what little it learned
    assert runs.loc["orphan", "st_status"] == "no reference" and pd.isna(runs.loc["orphan", "pass_single_task"])
    assert runs.loc["orphan", "final_vs_best"] == pytest.approx((0.42 / 0.44 + 1 + 0.90 / 0.90) / 3)
    # both pass own_base: the score still ranks good first; orphan (no reference) ranks after runs with one
    for rule in ("single_task", "own_base"):
        assert select_run(results, "best", rule)["strategy"] == "good"
        assert select_run(results, "best-effort", rule)["strategy"] == "good"
    lines = verdict_lines(results)
    assert lines[0].startswith("own_base rule: 3 of 3 continual runs pass; --select best: good_s0_320")
    assert lines[1].startswith("single_task rule: 1 of 2 continual runs pass; --select best: good_s0_320")


def test_the_runner_records_both_rules_in_summary_json(folder):
    import json

    lazy = json.loads((folder / "lazy_s0_320" / "summary.json").read_text())["rules"]
    assert lazy["own_base"]["pass"] is True
    assert lazy["single_task"]["pass"] is False
    assert lazy["single_task"]["reference_runs"] == ["single_task_s0_320", "single_task_s1_320"]
    assert lazy["single_task"]["tasks"]["seg"]["reference"] == pytest.approx(0.42)
    orphan = json.loads((folder / "orphan_s0_128" / "summary.json").read_text())["rules"]
    assert orphan["single_task"]["status"] == "no reference"
    reference = json.loads((folder / "single_task_s0_320" / "summary.json").read_text())["rules"]
    assert reference["single_task"]["status"] == "is the reference" and get_schedule("single_task").reference


def test_report_and_export_name_both_rules(folder, tmp_path, capsys):
    from run_bench import main as run_bench

    assert run_bench(["report", "--results", str(folder), "--no-latency"]) == 0
    out = capsys.readouterr().out
    assert "under the single_task rule" in out and "single_task rule: 1 of 2 continual runs pass" in out
    overview = (folder / "report" / "tables" / "overview.md").read_text()
    assert overview.index("pass rate, single_task rule") < overview.index("pass rate, own_base rule")
    assert (folder / "report" / "figures" / "stability_plasticity.png").stat().st_size > 0
    assert (folder / "report" / "figures" / "final_vs_single_task.png").stat().st_size > 0
    assert run_bench(["report", "--results", str(folder), "--no-latency", "--rule", "own_base"]) == 0
    assert "under the own_base rule" in capsys.readouterr().out
    # without a passing run, --select best names the best candidate and its failing tasks
    (folder / "good_s0_320").rename(folder / "gone")
    assert run_bench(["export", "--select", "best", "--results", str(folder), "--out", str(tmp_path / "b.pt")]) == 1
    error = capsys.readouterr().err
    assert "no continual run passes the single_task rule" in error and "best candidate lazy_s0_320" in error
    assert "det (mAP drop from the single-task reference 90.0 % > 5 %)" in error


def test_palette_tells_sixteen_groups_apart():
    labels = [f"group {i}" for i in range(16)]
    assert len(set(colours(labels).values())) == 16 and len(set(markers(labels).values())) == 16
    many = [f"group {i}" for i in range(30)]
    assert len(set(colours(many).values())) == 30


def test_the_report_flags_a_group_whose_seeds_were_extended_after_a_look(folder):
    from cl_bench.seed_plan import group_key, record_plan
    from cl_bench.yaml_io import load_yaml

    key = group_key(load_yaml((folder / "good_s0_320" / "config.yaml").read_text()))
    record_plan(folder, [(key, "good", [0], [])])
    record_plan(folder, [(key, "good", [1, 2], [0])])
    results = load_results(folder)
    runs = results.runs.set_index("strategy")
    assert runs.loc["good", "seed_plan"] == "planned 0; 1,2 added after results of 0"
    assert runs.loc["lazy", "seed_plan"] == "no plan recorded"
    assert [w for w in results.warnings if "seeds extended" in w] == [
        "good (image_size 320): seeds extended after results were seen (planned 0; 1,2 added after results of 0); its "
        "pass rate and intervals mix seeds chosen before and after a look"]
