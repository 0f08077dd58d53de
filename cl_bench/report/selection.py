"""Which run ``export --select`` picks: ``SELECTION_RULE``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cl_bench.errors import CLBenchError
from cl_bench.report.collect import Results
from cl_bench.results import primary_metrics

SELECTION_RULE = (
    "best: among the sequential (continual) runs, those where every task passes (relative drop from base to "
    "final <= 5 % of base), the one with the highest mean normalised final metric (mean over tasks of "
    "final / base); ties go to fewer parameters, then to the smaller run id. best-effort: the same ranking "
    "without the pass requirement. Reference runs (joint, single_task) and runs with a non-finite (NaN, inf) "
    "base, final or mean normalised final are never selected.")
MODES = ("best", "best-effort")


def _failures(run: pd.Series) -> str:
    failing = [f"{task} ({metric} drop {run[f'drop_rel_pct_{metric}']:.1f} % > {run['threshold_pct']:g} %)"
               for task, metric in primary_metrics().items() if run[f"pass_{metric}"] == 0]
    return ", ".join(failing) or "no task (a value is missing)"


def _finite(run: pd.Series) -> bool:
    """Whether the run's mean normalised final and its tasks' primary base and final are finite."""
    metrics = primary_metrics()
    columns = ["mean_normalised_final", *[f"{part}_{metrics[task]}" for task in str(run["order"]).split(",")
                                          if task in metrics for part in ("base", "final")]]
    return bool(np.isfinite(pd.to_numeric(run[columns], errors="coerce").to_numpy(dtype=float)).all())


def select_run(results: Results, mode: str) -> pd.Series:
    """The run ``SELECTION_RULE`` picks for ``mode`` (one of ``MODES``); no candidate is a
    CLBenchError saying why (for ``best``: the best candidate and its failing tasks)."""
    continual = results.runs[~results.runs["reference"]]
    if continual.empty:
        raise CLBenchError(f"{results.root}: no sequential (continual) run to select, only references "
                           f"({', '.join(results.runs['run_id'])}); export one with --run RUN_ID")
    finite = continual.apply(_finite, axis=1)
    if not finite.any():
        raise CLBenchError(f"{results.root}: every continual run has a non-finite (NaN or inf) metric "
                           f"({', '.join(continual['run_id'])}); none is selected")
    continual = continual[finite]
    ranked = continual.sort_values(["mean_normalised_final", "params", "run_id"], ascending=[False, True, True],
                                   na_position="last")
    if mode == "best-effort":
        return ranked.iloc[0]
    passing = ranked[ranked["pass"]]
    if passing.empty:
        best = ranked.iloc[0]
        raise CLBenchError(f"no continual run passes every task at {best['threshold_pct']:g} % "
                           f"({len(ranked)} candidates in {results.root}); best candidate {best['run_id']} "
                           f"(mean normalised final {best['mean_normalised_final']:.4f}) fails {_failures(best)}; "
                           "--select best-effort exports it anyway")
    return passing.iloc[0]
