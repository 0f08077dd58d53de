"""The finished runs of a results folder: ``runs.csv`` joined with each run's
``summary.json`` and ``config.yaml``, and loaders for its matrices and losses."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cl_bench.errors import CLBenchError, first_line
from cl_bench.experiment.run_id import result_settings
from cl_bench.results import DEFAULT_THRESHOLD_PCT, primary_metrics, read_runs
from cl_bench.schedules import SINGLE_TASK, get_schedule
from cl_bench.tasks import reported_metrics
from cl_bench.yaml_io import dotted_items, load_yaml

# Settings that split a strategy into separate groups when they vary across runs: runs.csv's
# columns, and any other result-changing config key (dotted) that varies, say train.lr_per_task.cls.
VARYING_KEYS = ["order", "backbone", "bn_policy", "image_size", "epochs"]
# config keys those columns hold, and keys that never split a group (the seed; options split by strategy)
_COVERED = ("data.order=", "model.backbone=", "train.bn_policy=", "data.image_size=", "train.epochs=",
            "run.seed=", "strategy.")


def _numeric_columns() -> list[str]:
    return ["seed", "bwt", "mean_normalised_final", "train_time_s", "params", "threshold_pct", "p_pass",
            *[f"{part}_{m}" for m in reported_metrics()
              for part in ("final", "base", "drop_rel_pct", "drop_abs_pts", "pass", "p_pass")],
            *[f"ci_{part}_{m}_{end}" for m in reported_metrics() for part in INTERVAL_PARTS for end in ("lo", "hi")]]


@dataclass
class Results:
    """``runs``: one row per run, ``runs.csv``'s columns plus ``schedule``, ``reference``,
    ``threshold_pct``, ``label`` (its group) and per metric ``drop_rel_pct_M``,
    ``drop_abs_pts_M``, ``pass_M`` (1/0), ``final_vs_single_task``. ``keys``: the columns the groups
    differ in."""

    root: Path
    runs: pd.DataFrame
    summaries: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    keys: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(self.runs["label"]))

    @property
    def threshold_pct(self) -> float:
        return float(self.runs["threshold_pct"].max())


INTERVAL_PARTS = ("base", "final", "drop_rel_pct")  # the per-run bootstrap intervals a report shows


def _per_metric(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's per-metric drops and verdicts, and its bootstrap intervals (``ci_<part>_<metric>_lo/hi``,
    ``p_pass_<metric>``; NaN for runs recorded without them). ``p_pass``: the probability that every
    task passes, the product of the primary metrics' (tasks are evaluated on separate images)."""
    row: dict[str, Any] = {"schedule": summary.get("schedule", "sequential"),
                           "threshold_pct": summary.get("threshold_pct", DEFAULT_THRESHOLD_PCT)}
    intervals = summary.get("intervals", {}).get("tasks", {})
    p_all = 1.0
    for metric, (task, part) in reported_metrics().items():
        values = (summary if part == "primary" else summary.get("secondary", {})).get("tasks", {}).get(task, {})
        row[f"drop_rel_pct_{metric}"] = values.get("drop_rel_pct")
        row[f"drop_abs_pts_{metric}"] = values.get("drop_abs_pts")
        row[f"pass_{metric}"] = None if "pass_rel" not in values else float(values["pass_rel"])
        ci = intervals.get(task, {}).get(metric, {})
        for name in INTERVAL_PARTS:
            low, high = ci.get(name) or (None, None)
            row[f"ci_{name}_{metric}_lo"], row[f"ci_{name}_{metric}_hi"] = low, high
        row[f"p_pass_{metric}"] = ci.get("p_pass")
        if part == "primary":
            p_all = p_all * ci["p_pass"] if ci.get("p_pass") is not None else math.nan
    row["p_pass"] = p_all
    return row


def _options_text(config: dict[str, Any]) -> str:
    """A run's strategy options as ``key=value`` pairs, nested keys dotted ('' when none are set)."""
    return ", ".join(dotted_items((config.get("strategy") or {}).get("options") or {}))


def _settings(config: dict[str, Any]) -> dict[str, str]:
    """A run's result-changing config values by dotted key, beyond runs.csv's columns, seed and strategy."""
    items = (item.split("=", 1) for item in dotted_items(result_settings(config))
             if not item.startswith(_COVERED))
    return {key: value for key, value in items if value != "{}"}  # an empty mapping is the default


def _label(row: pd.Series, varying: list[str], split: dict[str, set[str]]) -> str:
    """The strategy, then the runs.csv settings that vary, then the config keys and options that
    vary within this strategy's runs."""
    own = split.get(row["strategy"], set())
    details = (["reference"] * bool(row["reference"])
               + [f"{key} {row[key]}" for key in varying if key in VARYING_KEYS or key in own]
               + [row["options"] or "default options"] * ("options" in own))
    return row["strategy"] + (f" ({'; '.join(details)})" if details else "")


def _final_vs_single_task(runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Each run's mean over tasks of its final primary metric / the single-task reference's final (mean
    over that reference's seeds; the reference with the same settings but strategy and options), over
    tasks whose reference is > 0; NaN without such a reference. Unlike final / own base, it does not
    reward a strategy for learning the later tasks little."""
    finals = [f"final_{metric}" for metric in primary_metrics().values()]
    same = [key for key in keys if key not in ("strategy", "options")]
    single = runs[runs["schedule"] == SINGLE_TASK.name]
    groups = single.groupby(same, dropna=False) if same else [((), single)]
    references = {tuple(setting): group[finals].astype(float).mean() for setting, group in groups}

    def ratio(run: pd.Series) -> float:
        reference = references.get(tuple(run[same]))
        learned = reference > 0 if reference is not None else None
        if learned is None or not learned.any():
            return math.nan
        return float((run[finals][learned].astype(float) / reference[learned]).mean())
    return runs.apply(ratio, axis=1)


def load_results(root: str | Path) -> Results:
    """Every run listed in ``root/runs.csv`` whose summary.json and config.yaml are readable;
    runs without them are left out with a warning. No run at all is a CLBenchError."""
    root = Path(root)
    runs_csv = root / "runs.csv"
    if not root.is_dir():
        raise CLBenchError(f"{root}: results folder not found")
    if not runs_csv.is_file():
        raise CLBenchError(f"{root}: no finished runs ({runs_csv.name} not found); "
                           f"train some first, e.g. python run_bench.py --strategy naive --out {root}")
    table = read_runs(runs_csv)
    rows, summaries, configs, warnings = [], {}, {}, []
    for row in table.to_dict("records"):
        run_id = row["run_id"]
        try:
            summary = json.loads((root / run_id / "summary.json").read_text())
            config = load_yaml((root / run_id / "config.yaml").read_text())
        except OSError as error:
            warnings.append(f"run {run_id} left out: {error.filename}: {error.strerror}")
            continue
        except (ValueError, yaml.YAMLError) as error:
            warnings.append(f"run {run_id} left out: unreadable summary.json or config.yaml "
                            f"({first_line(error)})")
            continue
        summaries[run_id], configs[run_id] = summary, config
        rows.append({**row, **_per_metric(summary)})
    if not rows:
        raise CLBenchError(f"{runs_csv}: no finished run to report" + (f" ({warnings[0]})" if warnings else ""))
    runs = pd.DataFrame(rows)
    numeric = _numeric_columns()
    runs[numeric] = runs[numeric].apply(pd.to_numeric, errors="coerce")
    runs["pass"] = runs["pass"].astype(str).eq("True")
    runs["reference"] = runs["schedule"].map(lambda name: get_schedule(name).reference)
    runs["options"] = runs["run_id"].map(lambda run_id: _options_text(configs[run_id]))
    settings = pd.DataFrame([_settings(configs[run_id]) for run_id in runs["run_id"]]).fillna("unset")
    other = [key for key in settings.columns if settings[key].nunique() > 1]
    runs[other] = settings[other]
    varying = [key for key in [*VARYING_KEYS, *other] if runs[key].nunique(dropna=False) > 1]
    # a strategy run with several option settings (say two EWC lambdas) is one group per setting
    split = {name: {key for key in [*other, "options"] if group[key].nunique() > 1}
             for name, group in runs.groupby("strategy")}
    keys = ["strategy", *varying, *["options"] * any("options" in own for own in split.values())]
    runs = runs.sort_values(["reference", *keys, "seed"], kind="stable").reset_index(drop=True)
    runs["label"] = runs.apply(_label, axis=1, varying=varying, split=split)
    runs["final_vs_single_task"] = _final_vs_single_task(runs, keys)
    for label, group in runs.groupby("label", sort=False):
        repeated = sorted(group.loc[group["seed"].duplicated(), "seed"].astype(int).unique())
        if repeated:
            warnings.append(f"{label}: several runs with seed {', '.join(map(str, repeated))} (they differ in a "
                            f"setting other than {', '.join(keys)}); they are averaged together")
    return Results(root, runs, summaries, configs, keys, warnings)


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, ValueError) as error:
        raise CLBenchError(f"{path}: unreadable ({first_line(error)})") from None


def run_matrix(results: Results, run_id: str, kind: str = "matrix") -> pd.DataFrame:
    """A run's primary-metric matrix (``kind="matrix"``: R) or forgetting (``"forgetting"``):
    rows ``after <stage>``, columns the tasks in training order, each in its primary metric."""
    order = results.summaries[run_id]["order"]
    return pd.DataFrame({task: _read_csv(results.root / run_id / f"{kind}_{primary_metrics()[task]}.csv",
                                         index_col=0)[task] for task in order})


def stage_values(results: Results) -> pd.DataFrame:
    """Tidy primary-metric values of every run after every stage: label, run_id, seed,
    reference, stage (1-based), stage_name, task, value."""
    frames = []
    for run in results.runs.itertuples():
        R = run_matrix(results, run.run_id)
        long = R.reset_index(names="stage_name").melt(id_vars="stage_name", var_name="task", value_name="value")
        long["stage"] = long["stage_name"].map({name: i + 1 for i, name in enumerate(R.index)})
        long["stage_name"] = long["stage_name"].str.removeprefix("after ")
        frames.append(long.assign(label=run.label, run_id=run.run_id, seed=run.seed, reference=run.reference))
    return pd.concat(frames, ignore_index=True).dropna(subset=["value"])


def training_losses(results: Results, term: str = "loss") -> pd.DataFrame:
    """Mean training loss ``term`` per experience and task of every run that has a losses.csv:
    label, run_id, seed, stage (1-based), task, value."""
    frames = []
    for run in results.runs.itertuples():
        path = results.root / run.run_id / "losses.csv"
        if path.is_file():
            losses = _read_csv(path)
            losses = losses[losses["term"] == term]
            frames.append(losses.assign(label=run.label, run_id=run.run_id, seed=run.seed,
                                        stage=losses["train_exp"] + 1))
    columns = ["label", "run_id", "seed", "stage", "task", "value"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
