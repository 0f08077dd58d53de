"""Bootstrap intervals of one run: each task's base and final metrics, its
relative drop and the share of resamples in which it passes the own_base rule, resampling the evaluated
images (the same resample for base and final: a paired bootstrap)."""

from __future__ import annotations

import math
from typing import Any

from cl_bench.bootstrap import drop_interval
from cl_bench.evaluation import MultiTaskEvalMetric
from cl_bench.schedules import Schedule
from cl_bench.tasks import Task
from scenarios.common import TaskSplit


def _bounds(interval) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in (interval.low, interval.high)]


def run_intervals(metric: MultiTaskEvalMetric, tasks: dict[str, Task], splits: dict[str, TaskSplit],
                  schedule: Schedule, order: list[str], *, resamples: int, confidence: float, seed: int,
                  threshold_pct: float) -> dict[str, dict[str, dict[str, Any]]]:
    """``{task: {metric: {base, final, drop_rel_pct: [low, high], boot_pass_share}}}`` for every task and metric
    (``resamples`` seeded by ``seed``); tasks whose base or final evaluation is missing are left out."""
    rows = len(schedule.stage_names(order))
    intervals: dict[str, dict[str, dict[str, Any]]] = {}
    for j, name in enumerate(order):
        base_row, final_row = schedule.base_final_rows(j, rows)
        base, final = metric.samples_after(base_row, name), metric.samples_after(final_row, name)
        if base is None or final is None:
            continue
        assert list(base["index"]) == list(final["index"]), "base and final evaluated different images"
        base_stats = tasks[name].statistics(base, splits[name])
        final_stats = tasks[name].statistics(final, splits[name])
        intervals[name] = {}
        for metric_name in tasks[name].metrics:
            result = drop_interval(base_stats[metric_name], final_stats[metric_name], len(base["index"]),
                                   threshold=threshold_pct, resamples=resamples, confidence=confidence, seed=seed)
            intervals[name][metric_name] = {"base": _bounds(result.base), "final": _bounds(result.final),
                                            "drop_rel_pct": _bounds(result.drop),
                                            "boot_pass_share": float(result.pass_share)}
    return intervals
