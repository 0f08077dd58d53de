"""`report` and `export` over smoke runs of naive and joint (a reference), two seeds each."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import torch

from cl_bench.config import load_config
from cl_bench.devices import code_version, machine
from cl_bench.experiment.runner import run_experiment
from cl_bench.report.collect import load_results
from cl_bench.report.markdown import _code_versions
from cl_bench.report.selection import select_run
from run_bench import main as run_bench
from scenarios.layout import resolve_data

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "experiments" / "smoke.yaml"
TABLES = ["overview", "final", "metric_mIoU", "metric_mAP", "metric_mAP50", "metric_top1", "constraints", "runs"]
FIGURES = ["final_metrics", "drops", "stages", "losses", "constraints", "matrix_naive", "matrix_joint_reference"]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """naive and joint, seeds 0 and 1, 2 epochs per experience."""
    out = tmp_path_factory.mktemp("report_results")
    for strategy in ("naive", "joint"):
        for seed in (0, 1):
            config = load_config(SMOKE)
            config.strategy.name, config.train.epochs = strategy, 2
            config.run.out, config.run.seed, config.run.logger = str(out), seed, "none"
            run_experiment(config, log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def report(results_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert run_bench(["report", "--results", str(results_dir), "--out", str(out), "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(results_dir) -> pd.DataFrame:
    return pd.read_csv(results_dir / "runs.csv")


def test_report_writes_every_table_and_figure(report):
    for name in TABLES:
        for suffix in (".csv", ".md"):
            assert (report / "tables" / f"{name}{suffix}").stat().st_size > 0, name + suffix
    text = (report / "report.md").read_text()
    for name in FIGURES:
        png = report / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"](figures/{name}.png)" in text
    for heading in ("## Setup", "## Verdicts", "leads with the **own_base** rule", "## Definitions",
                    "(base − final) / base × 100 ≤ 5", "(reference − final) / reference × 100 ≤ 5",
                    "no continual run has a single-task reference", "torch 2.", "avalanche-lib",
                    "pycocotools", "mobilenet_v3_small backbone (initial weights: none)", "64×64 px",
                    "epochs per stage seg 2, det 2, cls 2, seg+det+cls 2;", "**Seeds**: 0, 1", "synthetic default"):
        assert heading in text, heading
    assert "INFO" in (report / "tables" / "constraints.md").read_text()  # latency measured on the CPU
    assert f"**Code** (cl_bench git commit) of the runs: {code_version()} (4 runs)." in text
    assert f"**Device** of the runs: {machine(torch.device('cpu'))}" in text  # every stage's machine


def test_the_code_line_counts_one_run_in_the_singular():
    summaries = {"a": {"environment": {"cl_bench": "abc1234"}}, "b": {"environment": {"cl_bench": "def5678"}},
                 "c": {"environment": {"cl_bench": "def5678"}}, "d": {}}
    assert _code_versions(SimpleNamespace(summaries=summaries)) == (
        "abc1234 (1 run); def5678 (2 runs); not recorded (1 run)")


def test_the_same_results_redraw_the_same_figures(results_dir, report, tmp_path):
    again = tmp_path / "again"
    assert run_bench(["report", "--results", str(results_dir), "--out", str(again), "--no-latency"]) == 0
    for name in FIGURES:
        if name != "constraints":  # carries the latency the first report measured
            first, second = (folder / "figures" / f"{name}.png" for folder in (report, again))
            assert first.read_bytes() == second.read_bytes(), name


def test_report_tables_are_mean_and_std_over_seeds(report, runs):
    final = pd.read_csv(report / "tables" / "final.csv").set_index("strategy")
    markdown = (report / "tables" / "final.md").read_text()
    assert "ddof = 1" in markdown
    for strategy, group in runs.groupby("strategy"):
        for metric in ("mIoU", "mAP", "mAP50", "top1"):
            mean, std = group[f"final_{metric}"].mean(), group[f"final_{metric}"].std(ddof=1)
            assert final.loc[strategy, f"final_{metric}_mean"] == pytest.approx(mean, abs=1e-12)
            assert final.loc[strategy, f"final_{metric}_std"] == pytest.approx(std, abs=1e-12)
            assert f"{mean:.4f} ± {std:.4f}" in markdown
    overview = pd.read_csv(report / "tables" / "overview.csv").set_index("strategy")
    naive = runs[runs["strategy"] == "naive"]
    assert overview.loc["naive", "pass_rate"] == naive["pass_own_base"].mean()
    assert overview.loc["naive", "bwt_std"] == pytest.approx(naive["bwt"].std(), abs=1e-15)
    assert "| joint (reference) | 2 | 0,1 | no plan recorded | by construction |" in \
        (report / "tables" / "overview.md").read_text()


def _eval(weights: Path, data_root: Path, out: Path) -> dict:
    result = subprocess.run([sys.executable, "eval.py", "--weights", str(weights), "--data_root", str(data_root),
                             "--tasks", "all", "--device", "cpu", "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())["metrics"]


def test_export_then_eval_reproduces_the_final_metrics(results_dir, runs, tmp_path, capsys):
    weights = tmp_path / "best_model.pt"
    assert run_bench(["export", "--select", "best-effort", "--results", str(results_dir), "--out", str(weights)]) == 0
    naive = runs[runs["strategy"] == "naive"]
    expected = naive.loc[_scores_without_reference(runs)[naive.index].idxmax(), "run_id"]
    card = json.loads((tmp_path / "best_model.card.json").read_text())
    assert card["source_run"]["run_id"] == expected and f"exported {expected}" in capsys.readouterr().out
    assert {c["name"]: c["status"] for c in card["constraints"]["checks"]}["parameters"] == "PASS"
    run_dir = results_dir / expected
    data_root = resolve_data(load_config(run_dir / "config.yaml").data).roots["seg"].parent
    measured = _eval(weights, data_root, tmp_path / "metrics.json")
    summary = json.loads((run_dir / "summary.json").read_text())
    for part in (summary, summary["secondary"]):
        for task, metric in part["metrics"].items():
            assert measured[task][metric] == part["tasks"][task]["final"], (task, metric)
            last = pd.read_csv(run_dir / f"matrix_{metric}.csv", index_col=0)[task].iloc[-1]
            assert measured[task][metric] == last


def test_export_a_named_run(results_dir, runs, tmp_path):
    run_id = runs.loc[runs["strategy"] == "joint", "run_id"].iloc[0]
    weights = tmp_path / "joint.pt"
    assert run_bench(["export", "--run", run_id, "--results", str(results_dir), "--out", str(weights)]) == 0
    assert weights.read_bytes() == (results_dir / run_id / "model.pt").read_bytes()
    card = json.loads((tmp_path / "joint.card.json").read_text())
    assert card["source_run"]["schedule"] == "joint" and card["config"]["strategy"]["name"] == "joint"


def _scores_without_reference(runs: pd.DataFrame) -> pd.Series:
    """--select's score of runs without a single-task reference: mean over tasks of final / the best final
    any run of the folder (references included) reached."""
    finals = runs[["final_mIoU", "final_mAP", "final_top1"]]
    return (finals / finals.max()).mean(axis=1)


def _set_pass(results: Path, run_id: str, passed: bool) -> None:
    """Make a run pass, or fail detection with a 50 % drop, in its summary.json and runs.csv alike."""
    path = results / run_id / "summary.json"
    summary = json.loads(path.read_text())
    summary["pass"] = passed
    for task, values in summary["tasks"].items():
        values["pass_rel"] = passed or task != "det"
    if not passed:
        summary["tasks"]["det"]["drop_rel_pct"] = 50.0
    path.write_text(json.dumps(summary))
    table = pd.read_csv(results / "runs.csv")
    table.loc[table["run_id"] == run_id, "pass_own_base"] = passed
    table.to_csv(results / "runs.csv", index=False)


def test_best_needs_a_passing_continual_run(results_dir, runs, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(results_dir, results)
    naive = runs[runs["strategy"] == "naive"].assign(score=_scores_without_reference(runs)).sort_values("score")
    lower, higher = naive["run_id"]
    for run_id in (lower, higher):
        _set_pass(results, run_id, False)
    weights = tmp_path / "best.pt"
    assert run_bench(["export", "--select", "best", "--results", str(results), "--out", str(weights)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no continual run passes the own_base rule at 5 % (2 candidates" in error
    assert f"best candidate {higher}" in error and "fails det (mAP drop from its base 50.0 % > 5 %)" in error
    assert "best-effort" in error and not weights.exists()  # joint passes, but as a reference it never counts

    _set_pass(results, lower, True)
    assert run_bench(["export", "--select", "best", "--results", str(results), "--out", str(weights)]) == 0
    assert json.loads((tmp_path / "best.card.json").read_text())["source_run"]["run_id"] == lower


def test_ties_go_to_fewer_parameters(results_dir):
    results = load_results(results_dir)
    naive = results.runs["strategy"] == "naive"
    results.runs.loc[naive, "final_vs_best"] = 0.9
    results.runs.loc[naive, "pass_own_base"] = True
    first, second = results.runs.loc[naive, "run_id"]
    results.runs.loc[results.runs["run_id"] == second, "params"] -= 1
    assert select_run(results, "best", "own_base")["run_id"] == second
    results.runs.loc[results.runs["run_id"] == second, "params"] += 1
    assert select_run(results, "best", "own_base")["run_id"] == min(first, second)


@pytest.mark.parametrize("command", [["report"], ["export", "--select", "best"]])
def test_no_results_is_a_one_line_error(tmp_path, capsys, command):
    assert run_bench([*command, "--results", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: results folder not found\n"
    assert run_bench([*command, "--results", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {tmp_path}: no finished runs (runs.csv not found)") and error.count("\n") == 1


def test_tables_carry_intervals_over_seeds_and_single_runs(results_dir, report, tmp_path):
    from cl_bench.bootstrap import seed_summary

    runs = load_results(results_dir).runs
    naive = runs[runs["strategy"] == "naive"].sort_values("seed")
    low, high = seed_summary(naive["final_mIoU"].tolist()).ci
    low, high = max(low, 0.0), min(high, 1.0)  # clipped to the metric's range
    final = pd.read_csv(report / "tables" / "final.csv")
    row = final[final["strategy"] == "naive"].iloc[0]
    assert (row["final_mIoU_lo"], row["final_mIoU_hi"]) == pytest.approx((low, high))
    assert f"[{low:.4f}, {high:.4f}]" in (report / "tables" / "final.md").read_text()
    paired = (report / "tables" / "paired.md").read_text()
    assert "| naive | joint" not in paired  # references are not compared with continual runs

    # one run alone: its own bootstrap interval over val images, and the share of resamples that pass
    single = tmp_path / "single"
    single.mkdir()
    run_id = naive["run_id"].iloc[0]
    shutil.copytree(results_dir / run_id, single / run_id)
    header, *rows = (results_dir / "runs.csv").read_text().splitlines()
    (single / "runs.csv").write_text("\n".join([header, *[r for r in rows if r.startswith(run_id)]]) + "\n")
    assert run_bench(["report", "--results", str(single), "--no-latency"]) == 0
    summary = json.loads((single / run_id / "summary.json").read_text())
    ci = summary["intervals"]["tasks"]["seg"]["mIoU"]
    assert ci["base"][0] <= summary["tasks"]["seg"]["base"] <= ci["base"][1]
    text = (single / "report" / "tables" / "metric_mIoU.md").read_text()
    assert f"[{ci['final'][0]:.4f}, {ci['final'][1]:.4f}]" in text
    verdict = "pass" if summary["tasks"]["seg"]["pass_rel"] else "fail"
    assert f"{verdict} (bootstrap share {ci['boot_pass_share']:.2f})" in text


def _naive_seed_1_edited(results_dir: Path, tmp_path: Path, old: str, new: str) -> tuple[dict, set, Any]:
    """A copy of the results whose naive seed-1 config.yaml has ``old`` replaced by ``new``: the naive
    labels by seed, the joint labels, and the Results."""
    out = tmp_path / "results"
    shutil.copytree(results_dir, out)
    naive = load_results(out).runs.query("strategy == 'naive'").sort_values("seed")
    config = out / naive["run_id"].iloc[1] / "config.yaml"
    config.write_text(config.read_text().replace(old, new))
    results = load_results(out)
    labels = results.runs.set_index("seed").query("strategy == 'naive'")["label"].to_dict()
    return labels, set(results.runs.query("strategy == 'joint'")["label"]), results


def test_one_group_per_option_setting_of_a_strategy(results_dir, tmp_path):
    """Runs of one strategy at two option settings are two groups, never averaged together."""
    assert load_results(results_dir).keys == ["strategy"]  # options alike: no options column
    labels, joint, results = _naive_seed_1_edited(results_dir, tmp_path, "\n  options: {}",
                                                  "\n  options:\n    ewc:\n      ewc_lambda: 10")
    assert results.keys == ["strategy", "options"]
    assert labels == {0: "naive (default options)", 1: "naive (ewc.ewc_lambda=10)"}
    assert joint == {"joint (reference)"}


def test_one_group_per_config_setting_beyond_the_runs_columns(results_dir, tmp_path):
    """Runs of one strategy that differ in a config key runs.csv has no column for (here a stage's
    learning rate) are two groups labelled by that key; strategies without the difference keep their label."""
    labels, joint, results = _naive_seed_1_edited(results_dir, tmp_path, "\n  lr_per_task: {}",  # not part_lr_...
                                                  "\n  lr_per_task:\n    det: 0.003")
    assert results.keys == ["strategy", "train.lr_per_task.det"]
    assert labels == {0: "naive (train.lr_per_task.det unset)", 1: "naive (train.lr_per_task.det 0.003)"}
    assert joint == {"joint (reference)"}
    assert results.warnings == []


def test_final_against_the_single_task_reference_of_the_same_setting(results_dir, tmp_path):
    """final / single-task: each run's mean over tasks of final / the single-task reference's mean final
    over seeds; a run whose setting has no single-task reference gets none."""
    _naive_seed_1_edited(results_dir, tmp_path, "lr_per_task: {}", "lr_per_task:\n    det: 0.003")
    out = tmp_path / "results"
    for run_id in load_results(out).runs.query("strategy == 'joint'")["run_id"]:  # stand in as single-task runs
        summary = out / run_id / "summary.json"
        summary.write_text(summary.read_text().replace('"schedule": "joint"', '"schedule": "single_task"'))
    runs = load_results(out).runs.set_index("run_id")
    finals = ["final_mIoU", "final_mAP", "final_top1"]
    single = runs[runs["schedule"] == "single_task"]
    assert len(single) == 2
    reference = single[finals].mean()
    naive = runs[runs["strategy"] == "naive"].sort_values("seed")
    learned = reference > 0
    expected = (naive.iloc[0][finals][learned] / reference[learned]).mean()
    assert naive["final_vs_single_task"].iloc[0] == pytest.approx(expected)
    assert pd.isna(naive["final_vs_single_task"].iloc[1])  # lr_per_task.det 0.003: no such reference
    assert naive["st_status"].tolist() == ["reference found", "no reference"]
    assert pd.isna(naive["pass_single_task"].iloc[1])  # no verdict, never a guess
    assert single["final_vs_single_task"].mean() == pytest.approx(1.0)


def test_export_prints_the_runs_csv_repairs_that_report_prints(tmp_path, capsys):
    """export reads the results as report does (runs.csv checked against the runs' summary.json) and prints
    the same warnings (collect.log_warnings): a row it repaired is never exported from in silence. A copy of
    the reference run that keeps its model.pt, no training."""
    import csv

    reference = REPO / "results" / "reference"
    run = "der_seg-det-cls_s1_c70d1b7d"
    results = tmp_path / "results"
    shutil.copytree(reference / run, results / run)
    with open(reference / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    row = next(r for r in rows if r["run_id"] == run)
    row["final_top1"] = "0.123"  # disagrees with its summary.json
    with open(results / "runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    [warning] = load_results(results).warnings
    assert warning.startswith(f"{results / 'runs.csv'} line 2 (run {run}) disagreed with its summary.json")

    def warnings_printed(*args: str) -> list[str]:
        assert run_bench(list(args)) == 0
        return [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning: ")]

    exported = warnings_printed("export", "--run", run, "--results", str(results), "--out", str(tmp_path / "m.pt"))
    reported = warnings_printed("report", "--results", str(results), "--out", str(tmp_path / "report"),
                                "--no-latency")
    assert exported == reported == [f"warning: {warning}"]
