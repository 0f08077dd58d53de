"""The challenge's two readings of its 5 % forgetting rule, and the single-task references
the second one needs.

* ``own_base`` (the challenge's section 3): every task's final metric is at least its
  base − 5 % of base, the base recorded right after the task's own stage
  (``results.summarize`` computes it per run).
* ``single_task`` (the challenge's headline): every task's final metric drops at most 5 %
  from the final of the ``single_task`` reference of the same setting (the same model,
  data, image size and epochs per task; mean over the reference's seeds). A run whose
  setting has no such reference gets no verdict ("no reference"), never a guess.

Under ``own_base`` a task learned badly keeps a small base that is easy to keep, and the
last task cannot drop at all; ``single_task`` rewards learning every task as well as a
model trained on it alone, and keeping it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from cl_bench.bootstrap import relative_drop
from cl_bench.config import result_settings
from cl_bench.schedules import SINGLE_TASK
from cl_bench.yaml_io import load_yaml

OWN_BASE, SINGLE_TASK_RULE = "own_base", "single_task"
RULES = (OWN_BASE, SINGLE_TASK_RULE)
RULE_DEFINITIONS = {
    OWN_BASE: ("own_base: for every task, (base − final) / base × 100 ≤ {threshold:g}, base = the task's metric "
               "right after its own stage (the challenge's section 3)"),
    SINGLE_TASK_RULE: ("single_task: for every task, (reference − final) / reference × 100 ≤ {threshold:g}, "
                       "reference = the final of the single_task run of the same setting (mean over its seeds; "
                       "the challenge's headline)"),
}
# Drops are compared with a small tolerance so that an exact 5 % drop is not failed by rounding.
TOLERANCE = 1e-9
NO_REFERENCE, REFERENCE_FOUND = "no reference", "reference found"


def rule_definition(rule: str, threshold_pct: float) -> str:
    return RULE_DEFINITIONS[rule].format(threshold=threshold_pct)


# single_task stages each restart from the initial weights: every part trains at its default
# (training.part_rates) and each stage is a first experience for the BN policy, so neither changes
# the reference
_NOT_IN_REFERENCE = ("part_lr_per_task", "bn_policy")


def settings_but_seed(config: Mapping[str, Any], leave_out: Sequence[str] = ()) -> str:
    """Every result-changing setting but the strategy and seed, as JSON (``config``: a config.yaml
    as a dict), without the ``train`` keys in ``leave_out``."""
    values = result_settings(dict(config))
    values.pop("strategy", None)
    (values.get("run") or {}).pop("seed", None)
    for key in leave_out:
        (values.get("train") or {}).pop(key, None)
    return json.dumps(values, sort_keys=True, default=str)


def setting_key(config: Mapping[str, Any]) -> str:
    """What a run's ``single_task`` reference depends on (``config``: a config.yaml as a dict): a
    ``single_task`` run with the same key is the reference of the others.

    Positive loss weights (``train.task_weights``) leave the key: a single_task stage trains its task
    alone, and AdamW's step does not change when the loss is scaled by a positive constant (up to its
    eps), so the reference is the same run; a weight of 0 (the task does not learn) stays."""
    values = dict(config)
    if (values.get("train") or {}).get("task_weights"):
        weights = values["train"]["task_weights"]
        values["train"] = values["train"] | {"task_weights": {t: w for t, w in weights.items() if not float(w) > 0}}
    return settings_but_seed(values, _NOT_IN_REFERENCE)


def single_task_verdict(finals: Mapping[str, float | None], references: Mapping[str, float] | None,
                        threshold_pct: float, reference_runs: Sequence[str] = ()) -> dict[str, Any]:
    """The ``single_task`` rule for one run: per task ``reference``, ``final``, ``ratio`` (final /
    reference), ``drop_rel_pct`` ((reference − final) / reference × 100), ``drop_abs_pts``,
    ``pass_rel``, ``pass_abs`` and ``at_or_above_reference``; overall ``pass``, ``pass_abs_all`` and
    ``bonus`` (every final ≥ its reference). ``references`` None (or missing a task): ``status``
    "no reference" and no verdict. A missing final fails its task."""
    if not references or any(references.get(task) is None for task in finals):
        return {"rule": SINGLE_TASK_RULE, "status": NO_REFERENCE, "pass": None, "pass_abs_all": None, "bonus": None}
    tasks = {}
    for task, final in finals.items():
        reference = float(references[task])
        value = math.nan if final is None else float(final)
        drop_rel, drop_abs = float(relative_drop(reference, value)), (reference - value) * 100.0
        tasks[task] = {"reference": reference, "final": None if math.isnan(value) else value,
                       "ratio": value / reference if reference > 0 else None,
                       "drop_rel_pct": None if math.isnan(drop_rel) else drop_rel,
                       "drop_abs_pts": None if math.isnan(drop_abs) else drop_abs,
                       "pass_rel": bool(drop_rel <= threshold_pct + TOLERANCE),
                       "pass_abs": bool(drop_abs <= threshold_pct + TOLERANCE),
                       "at_or_above_reference": bool(value >= reference)}
    return {"rule": SINGLE_TASK_RULE, "status": REFERENCE_FOUND, "definition": rule_definition(
                SINGLE_TASK_RULE, threshold_pct), "reference_runs": list(reference_runs),
            "pass": all(t["pass_rel"] for t in tasks.values()),
            "pass_abs_all": all(t["pass_abs"] for t in tasks.values()),
            "bonus": all(t["at_or_above_reference"] for t in tasks.values()), "tasks": tasks}


def reference_drop_interval(finals: Sequence[float], references: Sequence[float],
                            confidence: float = 0.95) -> tuple[float, float]:
    """Interval of a group's relative drop from its single-task reference, (mean reference − mean
    final) / mean reference × 100: Welch's t interval of the difference of the two means over their
    seeds, so the reference's seed spread widens it as much as the group's own; with one reference
    seed, the t interval over the group's seeds with the reference held fixed. NaN with fewer than two
    finals or a reference mean of 0."""
    finals, references = np.asarray(finals, dtype=float), np.asarray(references, dtype=float)
    finals, references = finals[np.isfinite(finals)], references[np.isfinite(references)]
    if finals.size < 2 or references.size == 0 or references.mean() <= 0:
        return math.nan, math.nan
    scale = 100.0 / references.mean()
    if references.size == 1:
        half = stats.t.ppf((1 + confidence) / 2, finals.size - 1) * finals.std(ddof=1) / math.sqrt(finals.size)
        low, high = references[0] - finals.mean() - half, references[0] - finals.mean() + half
    elif finals.std(ddof=1) == 0 and references.std(ddof=1) == 0:
        low = high = references.mean() - finals.mean()
    else:
        ci = stats.ttest_ind(references, finals, equal_var=False).confidence_interval(confidence)
        low, high = ci.low, ci.high
    return float(low * scale), float(high * scale)


def reference_finals(results_dir: Path, config: Mapping[str, Any],
                     metrics: Mapping[str, str]) -> tuple[dict[str, float] | None, list[str]]:
    """The single-task reference of a run with ``config`` among the finished runs of ``results_dir``
    (its runs.csv rows whose summary.json says schedule single_task and whose config.yaml has the same
    ``setting_key``): each task's mean final of its primary metric (``metrics``: task -> metric) and the
    reference runs' ids; (None, []) when there is none. Unreadable runs are skipped."""
    import pandas as pd  # local: only the runs.csv read needs it

    runs_csv = Path(results_dir) / "runs.csv"
    if not runs_csv.is_file():
        return None, []
    try:
        rows = pd.read_csv(runs_csv, dtype=str)
    except (OSError, ValueError):
        return None, []
    key, finals, ids = setting_key(config), {task: [] for task in metrics}, []
    for run_id in rows.get("run_id", pd.Series(dtype=str)).dropna():
        folder = Path(results_dir) / run_id
        try:
            summary = json.loads((folder / "summary.json").read_text())
            if summary.get("schedule") != SINGLE_TASK.name:
                continue
            if setting_key(load_yaml((folder / "config.yaml").read_text())) != key:
                continue
        except (OSError, ValueError, AttributeError):
            continue
        values = {task: (summary.get("tasks", {}).get(task) or {}).get("final") for task in metrics}
        if any(value is None for value in values.values()):
            continue
        ids.append(run_id)
        for task, value in values.items():
            finals[task].append(float(value))
    if not ids:
        return None, []
    return {task: float(np.mean(values)) for task, values in finals.items()}, ids


def verdict_text(summary: Mapping[str, Any], rule: str) -> str:
    """``yes`` / ``no`` for a run's summary.json verdict under ``rule``, or why it has none."""
    verdict = (summary.get("rules") or {}).get(rule)
    if verdict is None:
        return "not recorded"
    return {True: "yes", False: "no"}.get(verdict.get("pass"), verdict.get("status", "–"))
