"""Result matrices, forgetting, summary and result files against hand-computed numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cl_bench import results
from cl_bench.errors import CLBenchError
from cl_bench.results import (
    forgetting_matrix,
    metric_matrix,
    primary_metrics,
    runs_columns,
    runs_row,
    secondary_metrics,
    summarize,
    upsert_run,
    write_run_results,
)
from tests.builders import read_runs

PRIMARY, SECONDARY, RUNS_COLUMNS = primary_metrics(), secondary_metrics(), runs_columns()

ORDER = ["seg", "det", "cls"]
NAN = math.nan
ROWS = ["after seg", "after det", "after cls"]

# Primary metrics (mIoU, mAP, top1): row i = after experience i, column j = task j.
PRIMARY_R = [
    [0.60, 0.05, 0.10],
    [0.50, 0.40, 0.12],
    [0.57, 0.37, 0.80],
]
# Secondary metrics (pixel_acc, mAP50, top5).
SECONDARY_R = [
    [0.90, 0.10, 0.30],
    [0.85, 0.70, 0.35],
    [0.88, 0.72, 0.95],
]


def tidy(matrices: dict[str, list[list[float]]], order=ORDER, run_id="run1") -> pd.DataFrame:
    """Records for ``{metric_of_task_kind: matrix}``; NaN cells are left out (never measured)."""
    rows = []
    for mapping, matrix in ((PRIMARY, matrices.get("primary")), (SECONDARY, matrices.get("secondary"))):
        if matrix is None:
            continue
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                if not math.isnan(value):
                    rows.append({"run_id": run_id, "strategy": "naive", "seed": 0, "order": ",".join(order),
                                 "train_exp": i, "eval_task": order[j], "metric": mapping[order[j]],
                                 "value": value})
    return pd.DataFrame(rows)


@pytest.fixture()
def records() -> pd.DataFrame:
    return tidy({"primary": PRIMARY_R, "secondary": SECONDARY_R})


def test_metric_matrix_primary_and_secondary(records):
    R = metric_matrix(records, PRIMARY, ORDER)
    assert list(R.index) == ROWS and list(R.columns) == ORDER
    np.testing.assert_array_equal(R.to_numpy(), np.array(PRIMARY_R))
    S = metric_matrix(records.to_dict("records"), SECONDARY, ORDER)  # a list of dicts works too
    np.testing.assert_array_equal(S.to_numpy(), np.array(SECONDARY_R))


def test_metric_matrix_missing_cells_are_nan(records):
    dropped = records[~((records.train_exp == 2) & (records.eval_task == "det"))]
    R = metric_matrix(dropped, PRIMARY, ORDER)
    assert math.isnan(R.loc["after cls", "det"])
    assert R.loc["after cls", "seg"] == 0.57
    R = metric_matrix(records, {"seg": "mIoU"}, ORDER)  # tasks without a metric: NaN columns
    assert R["det"].isna().all() and R["cls"].isna().all()
    assert metric_matrix(pd.DataFrame(), PRIMARY, ORDER).isna().all().all()


def test_metric_matrix_rejects_duplicates_and_bad_rows(records):
    with pytest.raises(CLBenchError, match="two values of mIoU for seg after experience 0"):
        metric_matrix(pd.concat([records, records.iloc[:1]]), PRIMARY, ORDER)
    bad = records.copy()
    bad.loc[0, "train_exp"] = 3
    with pytest.raises(CLBenchError, match="train_exp 3"):
        metric_matrix(bad, PRIMARY, ORDER)


def test_forgetting_matrix_by_hand(records):
    F = forgetting_matrix(metric_matrix(records, PRIMARY, ORDER))
    expected = np.array([
        [NAN, NAN, NAN],
        [0.60 - 0.50, NAN, NAN],
        [max(0.60, 0.50) - 0.57, 0.40 - 0.37, NAN],
    ])
    np.testing.assert_allclose(F.to_numpy(), expected, rtol=0, atol=1e-12)
    assert list(F.index) == ROWS and list(F.columns) == ORDER


def test_forgetting_uses_best_earlier_value_and_skips_nan():
    R = pd.DataFrame([[0.5, NAN, NAN, NAN], [0.7, 0.2, NAN, NAN], [NAN, 0.3, 0.1, NAN], [0.4, NAN, 0.1, 0.9]],
                     columns=list("abcd"))
    F = forgetting_matrix(R).to_numpy()
    assert F[1, 0] == pytest.approx(0.5 - 0.7)          # improved: negative forgetting
    assert math.isnan(F[2, 0])                           # R[2][0] missing
    assert F[3, 0] == pytest.approx(0.7 - 0.4)           # best of 0.5, 0.7 (NaN skipped)
    assert F[2, 1] == pytest.approx(0.2 - 0.3)
    assert math.isnan(F[3, 1])
    assert F[3, 2] == pytest.approx(0.0)
    assert np.isnan(F[np.triu_indices(4)]).all()         # j >= i, including row 0


def test_summarize_by_hand(records):
    s = summarize(metric_matrix(records, PRIMARY, ORDER), ORDER)
    seg, det, cls = (s["tasks"][t] for t in ORDER)
    assert (seg["base"], seg["final"]) == (0.60, 0.57)
    assert (det["base"], det["final"]) == (0.40, 0.37)
    assert (cls["base"], cls["final"]) == (0.80, 0.80)
    # seg: exactly 5 % relative (3 pts): passes both, despite float rounding (5.000000000000004).
    assert seg["drop_rel_pct"] == pytest.approx(5.0) and seg["drop_abs_pts"] == pytest.approx(3.0)
    assert seg["pass_rel"] is True and seg["pass_abs"] is True and seg["at_or_above_base"] is False
    # det: 3 pts absolute passes, 7.5 % relative fails.
    assert det["drop_rel_pct"] == pytest.approx(7.5) and det["drop_abs_pts"] == pytest.approx(3.0)
    assert det["pass_rel"] is False and det["pass_abs"] is True
    assert cls["drop_rel_pct"] == 0.0 and cls["drop_abs_pts"] == 0.0
    assert cls["pass_rel"] and cls["pass_abs"] and cls["at_or_above_base"]
    assert s["pass"] is False and s["pass_abs_all"] is True and s["bonus"] is False
    assert s["bwt"] == pytest.approx(((0.57 - 0.60) + (0.37 - 0.40)) / 2)  # -0.03
    # relative BWT: each earlier task's change in units of its base, -5 % and -7.5 %
    assert s["bwt_rel"] == pytest.approx(((0.57 - 0.60) / 0.60 + (0.37 - 0.40) / 0.40) / 2)  # -0.0625
    assert s["mean_normalised_final"] == pytest.approx((0.95 + 0.925 + 1.0) / 3)
    assert "5 %" in s["pass_definition"] and "relative" in s["pass_definition"]
    json.dumps(s, allow_nan=False)


def test_summarize_threshold_and_pass(records):
    R = metric_matrix(records, PRIMARY, ORDER)
    assert summarize(R, ORDER, threshold_pct=7.5)["pass"] is True
    assert summarize(R, ORDER, threshold_pct=4.9)["tasks"]["seg"]["pass_rel"] is False
    assert summarize(R, ORDER, threshold_pct=2.9)["pass_abs_all"] is False


def test_summarize_secondary_by_hand(records):
    s = summarize(metric_matrix(records, SECONDARY, ORDER), ORDER)
    seg, det = s["tasks"]["seg"], s["tasks"]["det"]
    assert seg["drop_rel_pct"] == pytest.approx(0.02 / 0.90 * 100) and seg["drop_abs_pts"] == pytest.approx(2.0)
    assert det["drop_rel_pct"] == pytest.approx(-0.02 / 0.70 * 100) and det["at_or_above_base"] is True
    assert s["pass"] is True and s["bonus"] is False
    assert s["bwt"] == pytest.approx(0.0, abs=1e-12)
    # the same raw changes (-0.02, +0.02) in units of different bases do not cancel
    assert s["bwt_rel"] == pytest.approx((-0.02 / 0.90 + 0.02 / 0.70) / 2)
    assert s["mean_normalised_final"] == pytest.approx((0.88 / 0.90 + 0.72 / 0.70 + 1.0) / 3)


def test_summarize_bonus_when_nothing_forgotten():
    R = pd.DataFrame([[0.5, 0.0], [0.6, 0.3]], columns=["seg", "cls"])
    s = summarize(R, ["seg", "cls"])
    assert s["bonus"] is True and s["pass"] is True
    assert s["tasks"]["seg"]["drop_rel_pct"] == pytest.approx(-20.0)
    assert s["bwt"] == pytest.approx(0.1)


def test_summarize_nan_and_zero_base():
    R = pd.DataFrame([[0.0, NAN, NAN], [0.0, 0.0, NAN], [0.0, -0.1, NAN]], columns=ORDER)
    s = summarize(R, ORDER)
    seg, det, cls = (s["tasks"][t] for t in ORDER)
    assert seg["drop_rel_pct"] == 0.0 and seg["pass_rel"] is True        # base 0, final >= base
    assert det["drop_rel_pct"] == math.inf and det["pass_rel"] is False   # base 0, final < base
    assert cls == {"base": None, "final": None, "drop_rel_pct": None, "drop_abs_pts": None,
                   "pass_rel": False, "pass_abs": False, "at_or_above_base": False}
    assert s["pass"] is False and s["bwt"] is None and s["mean_normalised_final"] is None
    # Complete but every base 0: no normalised mean.
    assert summarize(R.iloc[:2, :2], ["seg", "det"])["mean_normalised_final"] is None


def test_summarize_single_task_order_has_no_bwt():
    s = summarize(pd.DataFrame([[0.4]], columns=["cls"]), ["cls"])
    assert s["bwt"] is None and s["pass"] is True and s["mean_normalised_final"] == 1.0


def test_reference_schedules():
    joint = tidy({"primary": [[0.6, 0.4, 0.8]]})
    R = metric_matrix(joint, PRIMARY, ORDER, stages=["seg+det+cls"])
    assert list(R.index) == ["after seg+det+cls"]
    s = summarize(R, ORDER, schedule="joint")
    assert s["tasks"]["det"] == {"base": 0.4, "final": 0.4, "drop_rel_pct": 0.0, "drop_abs_pts": 0.0,
                                 "pass_rel": True, "pass_abs": True, "at_or_above_base": True}
    assert s["pass"] and s["bwt"] is None
    single = metric_matrix(tidy({"primary": [[0.6, NAN, NAN], [NAN, 0.4, NAN], [NAN, NAN, 0.8]]}), PRIMARY, ORDER)
    s = summarize(single, ORDER, schedule="single_task")
    assert [s["tasks"][t]["final"] for t in ORDER] == [0.6, 0.4, 0.8] and s["pass"] and s["bwt"] is None
    with pytest.raises(CLBenchError, match="unknown schedule"):
        summarize(single, ORDER, schedule="cyclic")
    with pytest.raises(CLBenchError, match="1 rows, expected 3"):
        summarize(R, ORDER)


def no_temp_files(folder) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_write_run_results_files_and_round_trip(tmp_path, records):
    run_dir = tmp_path / "results" / "run1"
    summary = write_run_results(run_dir, records.sample(frac=1, random_state=0), ORDER,
                                {"train_time_s": 12.5, "params": 1000, "pass": "ignored"})
    expected = {"metrics.csv", "summary.json",
                *(f"matrix_{m}.csv" for m in ["mIoU", "mAP", "top1", "pixel_acc", "mAP50", "top5"]),
                *(f"forgetting_{m}.csv" for m in ["mIoU", "mAP", "top1"])}
    assert {p.name for p in run_dir.iterdir()} == expected

    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics.columns) == ["run_id", "strategy", "seed", "order", "train_exp", "eval_task", "metric",
                                     "value"]
    pd.testing.assert_frame_equal(metrics.sort_values(["train_exp", "eval_task", "metric"]).reset_index(drop=True),
                                  records.sort_values(["train_exp", "eval_task", "metric"]).reset_index(drop=True))

    top5 = pd.read_csv(run_dir / "matrix_top5.csv", index_col=0)
    assert top5.index.name == "experience" and list(top5.index) == ROWS and list(top5.columns) == ["cls"]
    assert top5["cls"].tolist() == [0.30, 0.35, 0.95]
    miou = pd.read_csv(run_dir / "matrix_mIoU.csv", index_col=0)
    assert list(miou.columns) == ["seg"] and miou["seg"].tolist() == [0.60, 0.50, 0.57]
    forgetting = pd.read_csv(run_dir / "forgetting_mAP.csv", index_col=0)
    assert list(forgetting.columns) == ["det"]
    assert forgetting["det"].iloc[:2].isna().all() and forgetting["det"].iloc[2] == pytest.approx(0.03)

    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert summary["train_time_s"] == 12.5 and summary["params"] == 1000
    assert summary["pass"] is False                                  # computed keys win over extra
    assert summary["metrics"] == PRIMARY and summary["secondary"]["metrics"] == SECONDARY
    assert summary["secondary"]["pass"] is True
    assert summary["secondary"]["tasks"]["det"]["final"] == 0.72
    assert summary["tasks"]["det"]["drop_rel_pct"] == pytest.approx(7.5)
    assert no_temp_files(run_dir)


def test_write_run_results_validates(tmp_path, records):
    with pytest.raises(CLBenchError, match="lack column.*run_id"):
        write_run_results(tmp_path, records.drop(columns="run_id"), ORDER, {})
    with pytest.raises(CLBenchError, match="no primary metric for task.*depth"):
        write_run_results(tmp_path, records, ["seg", "depth"], {})


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, records, monkeypatch):
    run_dir = tmp_path / "run1"
    write_run_results(run_dir, records, ORDER, {})
    before = (run_dir / "metrics.csv").read_text()

    def broken_to_csv(self, path, **kwargs):
        Path(path).write_text("half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        write_run_results(run_dir, records.iloc[:3], ORDER, {})
    assert (run_dir / "metrics.csv").read_text() == before
    assert no_temp_files(run_dir)
    monkeypatch.undo()
    with pytest.raises(TypeError):  # unserialisable summary: summary.json untouched
        write_run_results(run_dir, records, ORDER, {"bad": object()})
    assert json.loads((run_dir / "summary.json").read_text())["pass"] is False and no_temp_files(run_dir)


META = {"run_id": "run1", "strategy": "naive", "seed": 0, "order": "seg,det,cls", "backbone": "resnet18",
        "bn_policy": "shared", "image_size": 128, "epochs": 2, "train_time_s": 12.5, "params": 1000}


def test_runs_row(records, tmp_path):
    summary = write_run_results(tmp_path, records, ORDER, {})
    row = runs_row(summary, {**META, "unused": 1})
    assert list(row) == RUNS_COLUMNS
    assert row["final_mIoU"] == 0.57 and row["base_mAP"] == 0.40 and row["final_top1"] == 0.80
    assert row["final_pixel_acc"] == 0.88 and row["base_mAP50"] == 0.70 and row["final_top5"] == 0.95
    assert row["drop_rel_pct_det"] == pytest.approx(7.5) and row["drop_abs_pts_seg"] == pytest.approx(3.0)
    assert row["pass_own_base"] is False and row["bwt"] == pytest.approx(-0.03)
    assert row["bwt_rel"] == pytest.approx(-0.0625) and row["pass_single_task"] is None  # no reference
    assert summary["rules"]["single_task"]["status"] == "no reference"
    assert summary["rules"]["own_base"]["pass"] is False
    assert {k: row[k] for k in META} == META
    # A run without detection: its columns stay empty.
    two = summarize(pd.DataFrame([[0.5, 0.1], [0.5, 0.6]], columns=["seg", "cls"]), ["seg", "cls"])
    row = runs_row(two, {"run_id": "r"})
    assert row["final_mAP"] is None and row["drop_rel_pct_det"] is None and row["final_top1"] == 0.6


def test_upsert_run_replaces_by_run_id(tmp_path):
    runs_csv = tmp_path / "results" / "runs.csv"
    assert list(read_runs(runs_csv).columns) == RUNS_COLUMNS and read_runs(runs_csv).empty
    first = {**META, "final_mIoU": 0.5, "pass_own_base": True, "bwt": -0.01}
    upsert_run(runs_csv, first)
    upsert_run(runs_csv, {**META, "run_id": "run2", "seed": 1, "final_mIoU": 0.4, "pass_own_base": False, "extra": 9})
    upsert_run(runs_csv, {**first, "final_mIoU": 0.55, "bwt": None})  # replaces run1 in place
    assert runs_csv.read_text().splitlines()[0] == ",".join(RUNS_COLUMNS)
    runs = read_runs(runs_csv)
    assert list(runs.columns) == RUNS_COLUMNS
    assert runs["run_id"].tolist() == ["run1", "run2"]
    assert runs["final_mIoU"].tolist() == [0.55, 0.4]
    assert runs["pass_own_base"].tolist() == [True, False] and runs["seed"].tolist() == [0, 1]
    assert runs["bwt"].isna().all() and runs["final_mAP"].isna().all()
    assert runs.loc[0, "order"] == "seg,det,cls" and runs.loc[0, "train_time_s"] == 12.5
    assert no_temp_files(runs_csv.parent)
    with pytest.raises(CLBenchError, match="run_id"):
        upsert_run(runs_csv, {"strategy": "naive"})


def test_upsert_run_keeps_known_columns_of_an_older_file(tmp_path):
    runs_csv = tmp_path / "runs.csv"
    runs_csv.write_text("run_id,old_column,final_top1\nold,x,0.25\n")
    upsert_run(runs_csv, {"run_id": "new", "final_top1": 0.5})
    runs = read_runs(runs_csv)
    assert list(runs.columns) == RUNS_COLUMNS and runs["final_top1"].tolist() == [0.25, 0.5]


def test_a_runs_csv_from_before_the_rules_keeps_its_verdicts(tmp_path):
    """Its ``pass`` column is the own_base verdict: read under today's name, and kept when a row is added."""
    runs_csv = tmp_path / "runs.csv"
    runs_csv.write_text("run_id,epochs,pass,bwt\nold,20,True,-0.1\n")
    assert read_runs(runs_csv)["pass_own_base"].tolist() == [True]
    upsert_run(runs_csv, {"run_id": "new", "pass_own_base": False, "epochs": "seg:40;det:60;cls:20"})
    runs = read_runs(runs_csv)
    assert runs["pass_own_base"].tolist() == [True, False] and runs["epochs"].tolist() == ["20", "seg:40;det:60;cls:20"]


def test_runs_columns_constant():
    assert RUNS_COLUMNS[:8] == ["run_id", "strategy", "seed", "order", "backbone", "bn_policy", "image_size", "epochs"]
    assert RUNS_COLUMNS[-7:] == ["pass_own_base", "pass_single_task", "bwt", "bwt_rel", "mean_normalised_final",
                                 "train_time_s", "params"]
    assert len(set(RUNS_COLUMNS)) == len(RUNS_COLUMNS) == 8 + 12 + 6 + 7
    assert results.primary_metrics() == {"seg": "mIoU", "det": "mAP", "cls": "top1"}
    assert results.secondary_metrics() == {"seg": "pixel_acc", "det": "mAP50", "cls": "top5"}
