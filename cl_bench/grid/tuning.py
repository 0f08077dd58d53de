"""A documented hyper-parameter search: one YAML per tried setting (usually
``base: <start>.yaml`` plus the keys it changes), each trained by the harness,
then one table of outcomes (``tuning.csv``, ``tuning.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from cl_bench.atomic import write_text
from cl_bench.config import load_config
from cl_bench.errors import CLBenchError, first_line
from cl_bench.report.markdown import markdown_table
from cl_bench.results import primary_metrics, runs_row
from cl_bench.rules import SINGLE_TASK_RULE, verdict_text
from cl_bench.tasks import reported_metrics
from cl_bench.yaml_io import dotted_items, load_yaml


def setting_changes(path: Path) -> str:
    """The keys a YAML sets itself (its ``base`` excluded), as ``a.b=value`` items."""
    own = load_yaml(Path(path).read_text()) or {}
    own.pop("base", None)
    return ", ".join(dotted_items(own)) or "(the starting point)"


def _interval(bounds: list[float | None] | None, digits: int) -> str:
    """``[low, high]`` rounded; ``-`` where the run recorded no interval."""
    if not bounds or None in bounds:
        return "-"
    return f"[{round(bounds[0], digits)}, {round(bounds[1], digits)}]"


def outcome_row(setting: str, changes: str, run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """One table row: per reported metric base (right after its task was learned), final and,
    for primary metrics, the final's bootstrap interval, the relative drop and its paired bootstrap
    interval (over the evaluated images); the verdict."""
    flat = runs_row(summary, {})
    intervals = summary.get("intervals", {}).get("tasks", {})
    row: dict[str, Any] = {"setting": setting, "changes": changes}
    for metric, (task, _) in reported_metrics().items():
        if flat[f"base_{metric}"] is not None:
            row[f"{task} {metric} base"] = round(flat[f"base_{metric}"], 4)
            row[f"{task} {metric} final"] = round(flat[f"final_{metric}"], 4)
            if primary_metrics()[task] == metric:
                bounds = intervals.get(task, {}).get(metric, {})
                row[f"{task} {metric} final interval"] = _interval(bounds.get("final"), 4)
                row[f"{task} drop %"] = round(flat[f"drop_rel_pct_{task}"], 1)
                row[f"{task} drop % interval"] = _interval(bounds.get("drop_rel_pct"), 1)
    row["evaluated on"] = "tune split" if summary.get("evaluated_on", "").startswith("tune split") else \
        summary.get("evaluated_on", "val")
    row["pass (own_base)"] = "yes" if summary.get("pass") else "no"
    row["pass (single_task)"] = verdict_text(summary, SINGLE_TASK_RULE)
    row["train s"] = round(summary.get("train_time_s", float("nan")))
    row["run_id"] = run_id
    return row


DEFAULT_TUNE_SPLIT = 40  # images per task held out of train (of 240 in the real minis)


def _merged(previous: Path, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` merged into the outcome table of earlier searches in the same folder: their rows stay
    in place (rebuilt from their runs' summaries where those are beside it, so every row has today's
    columns), a setting tried again takes its new row there, new settings follow."""
    if not previous.is_file():
        return table
    try:
        earlier = pd.read_csv(previous)
    except (OSError, ValueError) as error:
        raise CLBenchError(f"{previous}: unreadable ({first_line(error)}); move it away to start a new table") from None
    if "setting" not in earlier:
        raise CLBenchError(f"{previous}: no 'setting' column; move it away to start a new table")
    order = list(dict.fromkeys([*earlier["setting"], *table["setting"]]))
    kept = earlier[~earlier["setting"].isin(table["setting"])]
    rebuilt = [_rebuilt(previous.parent, row) for row in kept.to_dict("records")]
    kept = pd.DataFrame(rebuilt, columns=list(dict.fromkeys(key for row in rebuilt for key in row)))
    return pd.concat([kept, table]).set_index("setting").loc[order].reset_index()


def _rebuilt(out: Path, row: dict[str, Any]) -> dict[str, Any]:
    """An earlier table row rebuilt from its run's summary, or kept as it is when the run is not in ``out``."""
    summary = out / str(row.get("run_id")) / "summary.json"
    if not summary.is_file():
        return row
    try:
        return outcome_row(row["setting"], row["changes"], row["run_id"], json.loads(summary.read_text()))
    except (OSError, ValueError) as error:
        raise CLBenchError(f"{summary}: unreadable ({first_line(error)})") from None


def run_search(paths: list[Path], out: Path, log: Callable[[str], None] = print,
               tune_split: int = DEFAULT_TUNE_SPLIT) -> pd.DataFrame:
    """Train every setting into ``out`` (finished ones are skipped) and write the outcome table (rows of
    earlier searches into ``out`` kept).
    Every setting is evaluated on the tune split (``tune_split`` training images per task held out
    of training), never on the val split that results report; a YAML's own ``data.tune_split`` wins."""
    from cl_bench.experiment.runner import run_experiment

    rows = []
    for path in paths:
        config = load_config(path)
        config.run.out = str(out)
        config.data.tune_split = config.data.tune_split or tune_split
        changes = setting_changes(path)
        log(f"== {path.stem}: {changes}")
        outcome = run_experiment(config, log)
        rows.append(outcome_row(path.stem, changes, outcome.run_id, outcome.summary))
    table = _merged(out / "tuning.csv", pd.DataFrame(rows))
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "tuning.csv", table.to_csv(index=False))
    write_text(out / "tuning.md", markdown_table(table.drop(columns="run_id").astype(str), left=2))
    return table
