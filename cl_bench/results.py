"""Result matrices, forgetting, the pass/fail summary and the result files.

Input everywhere is tidy metric records, one row per value, with the columns
``run_id, strategy, seed, order, train_exp, eval_task, metric, value``:
``train_exp`` is the training experience (stage) after which the evaluation
happened, ``eval_task`` the task evaluated. From them:

* ``R = metric_matrix(...)``: ``R[i][j]`` = task j's metric after experience i;
* ``forgetting_matrix(R)``: drop of each learned task from its best earlier value;
* ``summarize(R, order)``: base/final per task, relative and absolute drops,
  pass/fail (see ``PASS_DEFINITION``), backward transfer.

Files of one run (``results/<run_id>/``): ``metrics.csv``, ``matrix_<metric>.csv``,
``forgetting_<primary metric>.csv``, ``summary.json``; one row per run in
``results/runs.csv`` (columns ``runs_columns()``). Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from filelock import FileLock

from cl_bench.atomic import atomic_path, write_text
from cl_bench.bootstrap import relative_drop
from cl_bench.errors import CLBenchError
from cl_bench.rules import OWN_BASE, SINGLE_TASK_RULE, TOLERANCE, rule_definition, single_task_verdict
from cl_bench.schedules import Schedule, get_schedule
from cl_bench.tasks import TASKS

RECORD_COLUMNS: list[str] = ["run_id", "strategy", "seed", "order", "train_exp", "eval_task", "metric", "value"]

DEFAULT_THRESHOLD_PCT = 5.0
PASS_DEFINITION = (
    "pass (own_base rule) = for every task, the relative drop of its metric from base (right after training "
    "on it) to final (after the last experience) is at most {threshold:g} % of base: "
    "(base - final) / base * 100 <= {threshold:g}"
)


def primary_metrics() -> dict[str, str]:
    """Each registered task's primary metric: seg mIoU, det mAP, cls top1."""
    return {name: task.metrics[0] for name, task in TASKS.items()}


def secondary_metrics() -> dict[str, str]:
    """Each registered task's second metric: seg pixel_acc, det mAP50, cls top5."""
    return {name: task.metrics[1] for name, task in TASKS.items()}


def runs_columns() -> list[str]:
    """The columns of ``runs.csv``, from the registered tasks."""
    metrics = [*primary_metrics().values(), *secondary_metrics().values()]
    return [
        "run_id", "strategy", "seed", "order", "backbone", "bn_policy", "image_size", "epochs",
        *[f"final_{m}" for m in metrics],
        *[f"base_{m}" for m in metrics],
        *[f"drop_rel_pct_{t}" for t in TASKS],
        *[f"drop_abs_pts_{t}" for t in TASKS],
        "pass_own_base", "pass_single_task", "bwt", "bwt_rel", "mean_normalised_final", "train_time_s", "params",
    ]


# runs.csv columns renamed since: rows written before keep their values under the new name
RENAMED_COLUMNS = {"pass": "pass_own_base"}


def _frame(records: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))


def metric_matrix(records: pd.DataFrame | Iterable[Mapping[str, Any]], metric_by_task: Mapping[str, str],
                  order: list[str], *, stages: list[str] | None = None) -> pd.DataFrame:
    """``R[i][j]`` = value of ``metric_by_task[j]`` for task j after training experience i.

    Rows are labelled ``after <stage>`` (stages default to ``order``: experience i
    trains ``order[i]``), columns are the tasks in ``order``; cells never
    measured, and tasks missing from ``metric_by_task``, are NaN. Records of
    tasks/metrics not asked for are ignored; a ``train_exp`` outside the rows or
    two values for one cell raise ``CLBenchError``.
    """
    stages = list(order) if stages is None else list(stages)
    R = pd.DataFrame(np.nan, index=[f"after {s}" for s in stages], columns=list(order), dtype=float)
    frame = _frame(records)
    if frame.empty:
        return R
    missing = {"train_exp", "eval_task", "metric", "value"} - set(frame.columns)
    if missing:
        raise CLBenchError(f"metric records lack column(s) {', '.join(sorted(missing))}")
    wanted = frame["eval_task"].map(lambda t: metric_by_task.get(t) if t in R.columns else None)
    rows = frame[frame["metric"] == wanted]
    seen: set[tuple[int, str]] = set()
    for exp, task, value in zip(rows["train_exp"], rows["eval_task"], rows["value"]):
        i = int(exp)
        if not 0 <= i < len(stages):
            raise CLBenchError(f"metric record for {task} has train_exp {i}, outside 0..{len(stages) - 1} "
                               f"for stages {', '.join(stages)}")
        if (i, task) in seen:
            raise CLBenchError(f"two values of {metric_by_task[task]} for {task} after experience {i}")
        seen.add((i, task))
        R.iat[i, R.columns.get_loc(task)] = float(value)
    return R


def forgetting_matrix(R: pd.DataFrame) -> pd.DataFrame:
    """Forgetting ``F[i][j] = max_{j <= k < i} R[k][j] - R[i][j]`` for ``j < i``, NaN elsewhere.

    Columns must be the tasks in training order (column j = the task learned in
    experience j, as ``metric_matrix`` builds them). From experience i > j on,
    task j's forgetting is the gap between its best value after any experience
    from j up to i - 1 and its value after experience i (positive = forgotten,
    negative = improved).
    Row 0 and cells with ``j >= i`` (task not yet learned, or just learned) are
    NaN; NaN values in R are skipped in the max, and a NaN ``R[i][j]`` gives NaN.
    """
    values = R.to_numpy(dtype=float)
    F = np.full(values.shape, np.nan)
    for i in range(values.shape[0]):
        for j in range(min(i, values.shape[1])):
            earlier = values[j:i, j]
            if not np.isnan(earlier).all():
                F[i, j] = np.nanmax(earlier) - values[i, j]
    return pd.DataFrame(F, index=R.index, columns=R.columns)


def _none_if_nan(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _drop_rel_pct(base: float, final: float) -> float:
    return float(relative_drop(base, final))


def summarize(R: pd.DataFrame, order: list[str], threshold_pct: float = DEFAULT_THRESHOLD_PCT, *,
              schedule: str | Schedule = "sequential") -> dict[str, Any]:
    """Per-task base/final/drops and the overall verdict, as a JSON-serialisable dict.

    Per task j (``tasks[j]``): ``base`` = R[j][j], ``final`` = R[T-1][j],
    ``drop_rel_pct`` = (base - final) / base * 100 (base 0: 0 if final >= base
    else inf), ``drop_abs_pts`` = (base - final) * 100, ``pass_rel`` /
    ``pass_abs`` = the drop is <= ``threshold_pct``, ``at_or_above_base``.
    Overall: ``pass`` (every task passes relatively: ``pass_definition``),
    ``pass_abs_all``, ``bonus`` (every final >= base), ``bwt`` = mean over
    j < T-1 of (R[T-1][j] - R[j][j]) (None when T = 1 or a value is missing),
    ``bwt_rel`` = the same mean of (R[T-1][j] - R[j][j]) / R[j][j] over those with a base > 0
    (relative, so a task in small units weighs as much as one in large),
    ``mean_normalised_final`` = mean of final / base over tasks with base > 0
    (None when a value is missing). A missing (NaN) value fails its task's checks
    and is written as None.

    The schedule says where base and final are read (``Schedule.base_final``):
    reference schedules (``joint``: one row, all tasks at once; ``single_task``:
    task j alone in experience j) have no forgetting by construction, base = final.
    """
    schedule = get_schedule(schedule)
    stages = schedule.stage_names(order)
    values = R.reindex(columns=order).to_numpy(dtype=float)
    if values.shape[0] != len(stages):
        raise CLBenchError(f"result matrix has {values.shape[0]} rows, expected {len(stages)} "
                           f"for schedule {schedule.name} and order {', '.join(order)}")
    T = len(order)
    tasks: dict[str, dict[str, Any]] = {}
    bases, finals = [], []
    for j, task in enumerate(order):
        base, final = schedule.base_final(values, j)
        drop_rel, drop_abs = _drop_rel_pct(base, final), (base - final) * 100.0
        bases.append(base)
        finals.append(final)
        tasks[task] = {
            "base": _none_if_nan(base), "final": _none_if_nan(final),
            "drop_rel_pct": _none_if_nan(drop_rel), "drop_abs_pts": _none_if_nan(drop_abs),
            "pass_rel": bool(drop_rel <= threshold_pct + TOLERANCE),
            "pass_abs": bool(drop_abs <= threshold_pct + TOLERANCE),
            "at_or_above_base": bool(final >= base),
        }
    b, f = np.array(bases), np.array(finals)
    complete = not (np.isnan(b).any() or np.isnan(f).any())
    bwt = bwt_rel = math.nan
    if not schedule.reference and T > 1 and complete:
        bwt = float(np.mean(f[:-1] - b[:-1]))
        earlier = b[:-1] > 0
        if earlier.any():
            bwt_rel = float(np.mean((f[:-1][earlier] - b[:-1][earlier]) / b[:-1][earlier]))
    learned = b > 0
    normalised = float(np.mean(f[learned] / b[learned])) if complete and learned.any() else math.nan
    return {
        "schedule": schedule.name,
        "order": list(order),
        "threshold_pct": float(threshold_pct),
        "pass_definition": PASS_DEFINITION.format(threshold=threshold_pct),
        "pass": all(t["pass_rel"] for t in tasks.values()),
        "pass_abs_all": all(t["pass_abs"] for t in tasks.values()),
        "bonus": all(t["at_or_above_base"] for t in tasks.values()),
        "bwt": _none_if_nan(bwt),
        "bwt_rel": _none_if_nan(bwt_rel),
        "mean_normalised_final": _none_if_nan(normalised),
        "tasks": tasks,
    }


def _mapping(base: Mapping[str, str], order: list[str], kind: str) -> dict[str, str]:
    unknown = [t for t in order if t not in base]
    if unknown:
        raise CLBenchError(f"no {kind} metric for task(s) {', '.join(unknown)}; known: {', '.join(base)}")
    return {t: base[t] for t in order}


def _write_csv(path: Path, frame: pd.DataFrame, **kwargs: Any) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def write_run_results(run_dir: Path, records: pd.DataFrame, order: list[str], extra_summary: dict[str, Any],
                      *, schedule: str | Schedule = "sequential", threshold_pct: float = DEFAULT_THRESHOLD_PCT,
                      reference: tuple[dict[str, float] | None, list[str]] = (None, [])) -> dict[str, Any]:
    """Write a run's ``metrics.csv``, ``matrix_<metric>.csv`` (every metric in the
    records), ``forgetting_<metric>.csv`` (primary metrics) and ``summary.json``.

    The summary is ``extra_summary`` updated with ``summarize()`` of the primary
    matrix and, under ``"secondary"``, of the secondary matrix (computed keys win
    over ``extra_summary``'s), and ``rules``: both readings of the rule
    (``rules.single_task_verdict`` against ``reference``: the single-task reference's
    mean primary finals and its run ids; none: "no reference"). Returns it (as
    written, NaN as None).
    """
    run_dir = Path(run_dir)
    frame = _frame(records)
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise CLBenchError(f"metric records lack column(s) {', '.join(missing)}")
    frame = frame[RECORD_COLUMNS]
    stages = get_schedule(schedule).stage_names(order)
    primary = _mapping(primary_metrics(), order, "primary")
    secondary = _mapping(secondary_metrics(), order, "secondary")

    _write_csv(run_dir / "metrics.csv", frame, index=False)
    for metric in dict.fromkeys(frame["metric"]):
        reporting = [t for t in order if ((frame["eval_task"] == t) & (frame["metric"] == metric)).any()]
        R = metric_matrix(frame, dict.fromkeys(reporting, metric), reporting, stages=stages)
        _write_csv(run_dir / f"matrix_{metric}.csv", R, index_label="experience")
    R_primary = metric_matrix(frame, primary, order, stages=stages)
    F_primary = forgetting_matrix(R_primary)  # on all columns: column j must be the task of experience j
    for metric in dict.fromkeys(primary.values()):
        columns = [t for t in order if primary[t] == metric]
        _write_csv(run_dir / f"forgetting_{metric}.csv", F_primary[columns], index_label="experience")

    summary = dict(extra_summary)
    summary.update(summarize(R_primary, order, threshold_pct, schedule=schedule))
    summary["metrics"] = primary
    summary["rules"] = rules_summary(summary, threshold_pct, reference)
    secondary_summary = summarize(metric_matrix(frame, secondary, order, stages=stages), order, threshold_pct,
                                  schedule=schedule)
    summary["secondary"] = {"metrics": secondary, **secondary_summary}
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    return summary


def rules_summary(summary: dict[str, Any], threshold_pct: float,
                  reference: tuple[dict[str, float] | None, list[str]]) -> dict[str, Any]:
    """Both rules' verdicts of a summarised run (a single_task run is its own reference)."""
    own = {"rule": OWN_BASE, "definition": rule_definition(OWN_BASE, threshold_pct), "pass": summary["pass"],
           "pass_abs_all": summary["pass_abs_all"], "bonus": summary["bonus"]}
    if summary["schedule"] == SINGLE_TASK_RULE:
        single = {"rule": SINGLE_TASK_RULE, "status": "is the reference", "pass": None, "pass_abs_all": None,
                  "bonus": None}
    else:
        finals = {task: values["final"] for task, values in summary["tasks"].items()}
        single = single_task_verdict(finals, reference[0], threshold_pct, reference[1])
    return {OWN_BASE: own, SINGLE_TASK_RULE: single}


def _json_default(value: Any) -> Any:
    """numpy scalars and paths in ``extra_summary``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def epochs_text(config: Mapping[str, Any]) -> str:
    """Epochs per task (``train.epochs_per_task``, else ``train.epochs``) of a config as a dict, as
    runs.csv records them: ``seg:40;det:60;cls:20`` in the task order (timing.csv has each stage's)."""
    train, order = config.get("train") or {}, (config.get("data") or {}).get("order") or []
    per_task = train.get("epochs_per_task") or {}
    return ";".join(f"{task}:{per_task.get(task, train.get('epochs'))}" for task in order)


def model_text(config: Mapping[str, Any]) -> str | None:
    """The model of a config as a dict, as runs.csv's backbone column and the report name it: its backbone, or
    ``factory:package.module:function`` for a model its ``model.factory`` builds (the backbone then unused)."""
    model = config.get("model") or {}
    return f"factory:{model['factory']}" if model.get("factory") else model.get("backbone")


def runs_row(summary: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """One flat ``runs.csv`` row (keys ``runs_columns()``) from a run's summary and ``meta``
    (run_id, strategy, seed, order, backbone, bn_policy, image_size, epochs,
    train_time_s, params). Tasks not in the run give None."""
    row: dict[str, Any] = dict.fromkeys(runs_columns())
    row.update({k: v for k, v in meta.items() if k in row})
    for part, mapping, primary in ((summary, primary_metrics(), True),
                                   (summary.get("secondary", {}), secondary_metrics(), False)):
        for task, metric in mapping.items():
            values = part.get("tasks", {}).get(task, {})
            row[f"final_{metric}"] = values.get("final")
            row[f"base_{metric}"] = values.get("base")
            if primary:
                row[f"drop_rel_pct_{task}"] = values.get("drop_rel_pct")
                row[f"drop_abs_pts_{task}"] = values.get("drop_abs_pts")
    for key in ("bwt", "bwt_rel", "mean_normalised_final"):
        row[key] = summary.get(key)
    row["pass_own_base"] = summary.get("pass")
    row["pass_single_task"] = ((summary.get("rules") or {}).get(SINGLE_TASK_RULE) or {}).get("pass")
    return row


def csv_cell(value: Any) -> str:
    """How runs.csv writes a value: empty for None / NaN, lists comma-joined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value.item() if isinstance(value, np.generic) else value)


def runs_lock(runs_csv: Path) -> FileLock:
    """The inter-process lock every read-modify-write of ``runs_csv`` holds (``runs.csv.lock`` beside it)."""
    return FileLock(str(runs_csv) + ".lock")


def upsert_run(runs_csv: Path, row: dict[str, Any]) -> None:
    """Replace the row with ``row["run_id"]`` in ``runs_csv`` or append it; write
    atomically with the columns ``runs_columns()`` (other keys dropped, missing empty).
    Existing rows are kept as their text. Concurrent writers (processes finishing
    at once) take turns through ``runs_lock``, so no row is lost."""
    runs_csv = Path(runs_csv)
    if row.get("run_id") in (None, ""):
        raise CLBenchError(f"{runs_csv}: a run row needs a run_id")
    columns = runs_columns()
    new = {c: csv_cell(row.get(c)) for c in columns}
    runs_csv.parent.mkdir(parents=True, exist_ok=True)
    with runs_lock(runs_csv):
        rows: list[dict[str, str]] = []
        if runs_csv.is_file():
            with open(runs_csv, newline="") as handle:
                rows = [{c: _renamed(r).get(c) or "" for c in columns} for r in csv.DictReader(handle)]
        index = next((i for i, r in enumerate(rows) if r["run_id"] == new["run_id"]), None)
        if index is None:
            rows.append(new)
        else:
            rows[index] = new
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(runs_csv, text.getvalue())


def _renamed(row: dict[str, str]) -> dict[str, str]:
    """A runs.csv row with its columns under today's names (``RENAMED_COLUMNS``)."""
    return {RENAMED_COLUMNS.get(key, key): value for key, value in row.items()
            if not (key in RENAMED_COLUMNS and RENAMED_COLUMNS[key] in row)}


def has_run(runs_csv: Path, run_id: str) -> bool:
    """Whether ``runs_csv`` has a row for ``run_id``."""
    runs_csv = Path(runs_csv)
    if not runs_csv.is_file():
        return False
    with open(runs_csv, newline="") as handle:
        return any(r.get("run_id") == run_id for r in csv.DictReader(handle))
