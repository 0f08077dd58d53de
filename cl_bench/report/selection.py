"""Which run ``export --select`` picks: ``SELECTION_RULE``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cl_bench.errors import CLBenchError
from cl_bench.report.collect import Results
from cl_bench.results import primary_metrics
from cl_bench.rules import RULES, SINGLE_TASK_RULE

SELECTION_RULE = (
    "best: among the sequential (continual) runs that pass the rule (--rule; default single_task when the "
    "results hold a single-task reference, else own_base), the one with the highest score = mean over tasks of "
    "final / the single-task reference's final (a run without a reference: final / the best final any run in "
    "the folder reached for that task; runs with a reference rank before runs without), so a run cannot win by "
    "learning a task little; ties go to fewer "
    "parameters, then to the smaller run id. best-effort: the same ranking without the pass requirement. "
    "Reference runs (joint, single_task) and runs with a non-finite (NaN, inf) base or final are never selected.")
MODES = ("best", "best-effort")


def pass_column(rule: str) -> str:
    return f"pass_{rule}"


def _failures(run: pd.Series, rule: str) -> str:
    prefix = "st_" if rule == SINGLE_TASK_RULE else ""
    what = "drop from the single-task reference" if rule == SINGLE_TASK_RULE else "drop from its base"
    failing = [f"{task} ({metric} {what} {run[f'{prefix}drop_rel_pct_{metric}']:.1f} % > {run['threshold_pct']:g} %)"
               for task, metric in primary_metrics().items() if run.get(f"{prefix}pass_{metric}") == 0]
    if rule == SINGLE_TASK_RULE and run["st_status"] != "reference found":
        return f"no task (the run has {run['st_status']})"
    return ", ".join(failing) or "no task (a value is missing)"


def _finite(run: pd.Series) -> bool:
    """Whether the run's tasks' primary base and final are finite."""
    metrics = primary_metrics()
    columns = [f"{part}_{metrics[task]}" for task in str(run["order"]).split(",") if task in metrics
               for part in ("base", "final")]
    return bool(np.isfinite(pd.to_numeric(run[columns], errors="coerce").to_numpy(dtype=float)).all())


def scores(runs: pd.DataFrame) -> pd.Series:
    """Each run's selection score: final / single-task, or without a reference final / best final."""
    return runs["final_vs_single_task"].where(runs["final_vs_single_task"].notna(), runs["final_vs_best"])


def select_run(results: Results, mode: str, rule: str) -> pd.Series:
    """The run ``SELECTION_RULE`` picks for ``mode`` (one of ``MODES``) under ``rule``; no candidate is a
    CLBenchError saying why (for ``best``: the best candidate by the same score and its failing tasks)."""
    continual = results.runs[~results.runs["reference"]]
    if continual.empty:
        raise CLBenchError(f"{results.root}: no sequential (continual) run to select, only references "
                           f"({', '.join(results.runs['run_id'])}); export one with --run RUN_ID")
    finite = continual.apply(_finite, axis=1)
    if not finite.any():
        raise CLBenchError(f"{results.root}: every continual run has a non-finite (NaN or inf) metric "
                           f"({', '.join(continual['run_id'])}); none is selected")
    continual = continual[finite].assign(selection_score=scores(continual[finite]),
                                         has_reference=continual[finite]["final_vs_single_task"].notna())
    ranked = continual.sort_values(["has_reference", "selection_score", "params", "run_id"],
                                   ascending=[False, False, True, True], na_position="last")
    if mode == "best-effort":
        return ranked.iloc[0]
    passing = ranked[ranked[pass_column(rule)] == 1]
    if passing.empty:
        best = ranked.iloc[0]
        raise CLBenchError(f"no continual run passes the {rule} rule at {best['threshold_pct']:g} % "
                           f"({len(ranked)} candidates in {results.root}); best candidate {best['run_id']} "
                           f"(score {best['selection_score']:.4f}) fails {_failures(best, rule)}; "
                           "--select best-effort exports it anyway")
    return passing.iloc[0]


def verdict_lines(results: Results) -> list[str]:
    """Per rule: how many continual runs pass, and the run ``--select best`` (or, none passing,
    ``best-effort``) picks under it."""
    lines = []
    continual = results.runs[~results.runs["reference"]]
    for rule in RULES:
        judged = continual[continual[pass_column(rule)].notna()]
        if continual.empty:
            break
        if judged.empty:
            lines.append(f"{rule} rule: no continual run has a single-task reference of its setting")
            continue
        passing = int((judged[pass_column(rule)] == 1).sum())
        try:
            best, how = select_run(results, "best", rule), "best"
        except CLBenchError:
            best, how = select_run(results, "best-effort", rule), "best-effort (none passes)"
        lines.append(f"{rule} rule: {passing} of {len(judged)} continual runs pass; --select {how}: "
                     f"{best['run_id']} ({best['label']}, score {best['selection_score']:.3f})")
    return lines
