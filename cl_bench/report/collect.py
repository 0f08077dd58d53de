"""The finished runs of a results folder: ``runs.csv`` joined with each run's
``summary.json`` and ``config.yaml``, and loaders for its matrices and losses."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from cl_bench.bootstrap import relative_drop
from cl_bench.config import result_settings
from cl_bench.errors import CLBenchError, first_line
from cl_bench.results import (
    DEFAULT_THRESHOLD_PCT,
    RENAMED_COLUMNS,
    csv_cell,
    epochs_text,
    model_text,
    primary_metrics,
    runs_columns,
    runs_row,
)
from cl_bench.rules import NO_REFERENCE, OWN_BASE, REFERENCE_FOUND, RULES, SINGLE_TASK_RULE, TOLERANCE, setting_key
from cl_bench.schedules import SINGLE_TASK, get_schedule
from cl_bench.seed_plan import group_key, read_plan, seeds_note
from cl_bench.tasks import reported_metrics
from cl_bench.yaml_io import dotted_items, load_yaml

# Settings that split a strategy into separate groups when they vary across runs: runs.csv's
# columns, and any other result-changing config key (dotted) that varies, say train.lr_per_task.cls.
VARYING_KEYS = ["order", "backbone", "bn_policy", "image_size", "epochs"]
# config keys those columns hold, and keys that never split a group (the seed; options split by strategy)
_COVERED = ("data.order=", "model.backbone=", "train.bn_policy=", "data.image_size=", "train.epochs=",
            "train.epochs_per_task.", "run.seed=", "strategy.")


def _numeric_columns() -> list[str]:
    return ["seed", "bwt", "bwt_rel", "mean_normalised_final", "train_time_s", "params", "threshold_pct",
            "boot_pass_share",
            *[f"{part}_{m}" for m in reported_metrics()
              for part in ("final", "base", "drop_rel_pct", "drop_abs_pts", "pass", "boot_pass_share")],
            *[f"ci_{part}_{m}_{end}" for m in reported_metrics() for part in INTERVAL_PARTS for end in ("lo", "hi")]]


@dataclass
class Results:
    """``runs``: one row per run, ``runs.csv``'s columns plus ``schedule``, ``reference``,
    ``threshold_pct``, ``label`` (its group), ``setting`` (``rules.setting_key``), ``epochs`` (per
    stage, from the run's timings), per metric ``drop_rel_pct_M``, ``drop_abs_pts_M``, ``pass_M``
    (own_base, 1/0) and the single_task rule's ``st_reference_M``, ``st_ratio_M``,
    ``st_drop_rel_pct_M``, ``st_drop_abs_pts_M``, ``st_pass_M``; per run ``pass_own_base``,
    ``pass_single_task`` (NaN: no reference), ``bonus_own_base`` / ``bonus_single_task`` (every final at
    or above its base / its reference), ``st_status``, ``final_vs_single_task``,
    ``plasticity``, ``stability`` and ``final_vs_best``. ``keys``: the columns the groups differ in;
    ``references``: the single_task runs of each setting."""

    root: Path
    runs: pd.DataFrame
    summaries: dict[str, dict[str, Any]]
    configs: dict[str, dict[str, Any]]
    keys: list[str]
    warnings: list[str] = field(default_factory=list)
    references: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(self.runs["label"]))

    @property
    def threshold_pct(self) -> float:
        return float(self.runs["threshold_pct"].max())

    @property
    def default_rule(self) -> str:
        """``single_task`` when some continual run has a single-task reference, else ``own_base``."""
        continual = self.runs[~self.runs["reference"]]
        return SINGLE_TASK_RULE if (continual["st_status"] == REFERENCE_FOUND).any() else OWN_BASE

    def rule(self, requested: str | None) -> str:
        """``requested`` (one of ``rules.RULES``), or the default rule when None."""
        if requested is None:
            return self.default_rule
        if requested not in RULES:
            raise CLBenchError(f"--rule {requested}: unknown rule (choose from {', '.join(RULES)})")
        return requested


INTERVAL_PARTS = ("base", "final", "drop_rel_pct")  # the per-run bootstrap intervals a report shows


def _per_metric(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's own_base drops and verdicts per metric, and its bootstrap intervals (``ci_<part>_<metric>_lo/hi``;
    NaN for runs recorded without them). ``boot_pass_share_<metric>``: the share of the run's bootstrap
    resamples of val images in which the task passes own_base (not a probability of passing, and blind to
    the spread over seeds); ``boot_pass_share``: the product over tasks (each is resampled over its own
    images), the share of joint resamples in which every task passes."""
    row: dict[str, Any] = {"schedule": summary.get("schedule", "sequential"),
                           "threshold_pct": summary.get("threshold_pct", DEFAULT_THRESHOLD_PCT),
                           "bonus_own_base": summary.get("bonus")}
    intervals = summary.get("intervals", {}).get("tasks", {})
    share_all = 1.0
    for metric, (task, part) in reported_metrics().items():
        values = (summary if part == "primary" else summary.get("secondary", {})).get("tasks", {}).get(task, {})
        row[f"drop_rel_pct_{metric}"] = values.get("drop_rel_pct")
        row[f"drop_abs_pts_{metric}"] = values.get("drop_abs_pts")
        row[f"pass_{metric}"] = None if "pass_rel" not in values else float(values["pass_rel"])
        ci = intervals.get(task, {}).get(metric, {})
        for name in INTERVAL_PARTS:
            low, high = ci.get(name) or (None, None)
            row[f"ci_{name}_{metric}_lo"], row[f"ci_{name}_{metric}_hi"] = low, high
        share = ci.get("boot_pass_share", ci.get("p_pass"))  # the name runs recorded before
        row[f"boot_pass_share_{metric}"] = share
        if part == "primary":
            share_all = share_all * share if share is not None else math.nan
    row["boot_pass_share"] = share_all
    row["bwt_rel"] = _relative_bwt(summary)
    return row


def _relative_bwt(summary: dict[str, Any]) -> float | None:
    """The summary's ``bwt_rel``, or (runs recorded before it) the same from its tasks' base and final."""
    if "bwt_rel" in summary or get_schedule(summary.get("schedule", "sequential")).reference:
        return summary.get("bwt_rel")
    tasks = [summary.get("tasks", {}).get(task) or {} for task in summary.get("order", [])[:-1]]
    pairs = [(t.get("base"), t.get("final")) for t in tasks]
    if not pairs or any(base is None or final is None for base, final in pairs):
        return None
    learned = [(final - base) / base for base, final in pairs if base > 0]
    return float(np.mean(learned)) if learned else None


def _options_text(config: dict[str, Any]) -> str:
    """A run's strategy options as ``key=value`` pairs, nested keys dotted ('' when none are set)."""
    return ", ".join(dotted_items((config.get("strategy") or {}).get("options") or {}))


def _settings(config: dict[str, Any]) -> dict[str, str]:
    """A run's result-changing config values by dotted key, beyond runs.csv's columns, seed and strategy."""
    items = (item.split("=", 1) for item in dotted_items(result_settings(config))
             if not item.startswith(_COVERED))
    return {key: value for key, value in items if value != "{}"}  # an empty mapping is the default


def _label(row: pd.Series, varying: list[str], split: dict[str, set[str]]) -> str:
    """The strategy, then the runs.csv settings that vary, then the config keys that vary within this
    strategy's runs, then its options where it set any (or where they vary within its runs)."""
    own = split.get(row["strategy"], set())
    details = (["reference"] * bool(row["reference"])
               + [f"{key} {row[key]}" for key in varying if key in VARYING_KEYS or key in own]
               + [row["options"] or "default options"] * ("options" in own or bool(row["options"])))
    return row["strategy"] + (f" ({'; '.join(details)})" if details else "")


def _single_task_rule(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The single_task rule's columns of every run (see ``Results``) against the single_task runs of
    its setting (mean over their seeds), and those reference runs by setting."""
    metrics, primary = list(reported_metrics()), list(primary_metrics().values())
    references = dict(iter(runs[runs["schedule"] == SINGLE_TASK.name].groupby("setting")))
    best = runs[[f"final_{m}" for m in primary]].astype(float).max()
    threshold = runs["threshold_pct"].astype(float)
    columns: dict[str, Any] = {}
    reference = pd.DataFrame([references[s][[f"final_{m}" for m in metrics]].astype(float).mean()
                              if s in references else pd.Series(dtype=float) for s in runs["setting"]],
                             index=runs.index).reindex(columns=[f"final_{m}" for m in metrics])
    for m in metrics:
        ref, final = reference[f"final_{m}"], runs[f"final_{m}"].astype(float)
        columns[f"st_reference_{m}"] = ref
        columns[f"st_ratio_{m}"] = final / ref.where(ref > 0)
        columns[f"st_drop_rel_pct_{m}"] = pd.Series(relative_drop(ref.to_numpy(), final.to_numpy()), index=runs.index)
        columns[f"st_drop_abs_pts_{m}"] = (ref - final) * 100
        columns[f"st_pass_{m}"] = (columns[f"st_drop_rel_pct_{m}"] <= threshold + TOLERANCE).astype(float).where(
            ref.notna())
        for end, other in (("lo", "hi"), ("hi", "lo")):  # a higher final is a smaller drop
            bound = runs.get(f"ci_final_{m}_{other}", pd.Series(math.nan, index=runs.index)).astype(float)
            columns[f"ci_st_drop_rel_pct_{m}_{end}"] = (ref - bound) / ref.where(ref > 0) * 100
    frame = pd.DataFrame(columns, index=runs.index)
    found = reference[[f"final_{m}" for m in primary]].notna().all(axis=1)
    frame["st_status"] = np.where(runs["schedule"] == SINGLE_TASK.name, "is the reference",
                                  np.where(found, REFERENCE_FOUND, NO_REFERENCE))
    frame["pass_single_task"] = frame[[f"st_pass_{m}" for m in primary]].min(axis=1).where(
        frame["st_status"] == REFERENCE_FOUND)
    ratios = frame[[f"st_ratio_{m}" for m in primary]]
    frame["final_vs_single_task"] = ratios.mean(axis=1).where(found)
    # the bonus: every final at or above its reference
    frame["bonus_single_task"] = (ratios >= 1 - TOLERANCE).all(axis=1).where(frame["st_status"] == REFERENCE_FOUND)
    bases = runs[[f"base_{m}" for m in primary]].astype(float)
    learned = reference[[f"final_{m}" for m in primary]]
    # over the tasks the reference learned (a final > 0), as final / single-task
    frame["plasticity"] = pd.DataFrame(bases.to_numpy() / learned.where(learned > 0).to_numpy(),
                                       index=runs.index).mean(axis=1).where(found)
    frame["stability"] = 1 + runs["bwt_rel"].astype(float)  # mean over earlier tasks of final / base
    frame["final_vs_best"] = (runs[[f"final_{m}" for m in primary]].astype(float) / best.where(best > 0).to_numpy()
                              ).mean(axis=1)
    return frame, references




_META = ("run_id", "strategy", "seed", "order", "backbone", "bn_policy", "image_size", "epochs")


class _LeftOut(Exception):
    """Why a run's summary.json or config.yaml cannot be used (one line naming the file)."""


def _read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's summary.json and config.yaml as mappings, or ``_LeftOut`` naming the file and the problem."""
    loaded = []
    for name, parse, errors in (("summary.json", json.loads, (ValueError,)),
                                ("config.yaml", load_yaml, (ValueError, yaml.YAMLError))):
        path = run_dir / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise _LeftOut(f"{path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise _LeftOut(f"{path}: unreadable (not UTF-8 text)") from None
        if not text.strip():
            raise _LeftOut(f"{path}: empty file")
        try:
            value = parse(text)
        except errors as error:
            raise _LeftOut(f"{path}: unreadable, cut short or damaged? ({first_line(error)})") from None
        if not isinstance(value, dict):
            raise _LeftOut(f"{path}: not a run's {name} (its top level is a {type(value).__name__}, "
                           "expected a mapping)")
        loaded.append(value)
    return loaded[0], loaded[1]


def _meta_from_config(summary: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """runs.csv's descriptive columns of a run, as the run recorded them (``run_record.add_runs_row``); the
    backbone column names the model as ``results.model_text`` does (``factory:...`` for a factory's model)."""
    def get(section: str, key: str) -> Any:
        return (config.get(section) or {}).get(key)
    order = summary.get("order") or get("data", "order") or []
    meta = {"strategy": get("strategy", "name"), "seed": get("run", "seed"),
            "order": ",".join(order) if isinstance(order, list) else order,
            "backbone": model_text(config), "bn_policy": get("train", "bn_policy"),
            "image_size": get("data", "image_size"), "epochs": epochs_text(config)}
    return {key: value for key, value in meta.items() if value not in (None, "")}


# runs.csv columns a summary.json written before them has no value for (runs.csv rows may derive them)
_ADDED_SINCE = ("bwt_rel", "pass_single_task")


def _same(text: str, value: Any) -> bool:
    """Whether a runs.csv cell ``text`` says ``value`` (numbers compared as numbers, missing = NaN = None)."""
    expected = csv_cell(value)
    if text == expected:
        return True
    try:
        a, b = float(text) if text else math.nan, float(expected) if expected else math.nan
    except ValueError:
        return text.strip().lower() == expected.strip().lower()
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)



def _csv_rows(runs_csv: Path) -> tuple[list[tuple[int, str, dict[str, str] | None, str]], str | None]:
    """runs.csv's data lines as (line number, run id, cells or None when the line is malformed, why), and
    why the whole file is unusable (empty, no header with run_id), else None."""
    try:
        text = runs_csv.read_text(encoding="utf-8")
    except OSError as error:
        raise CLBenchError(f"{runs_csv}: unreadable ({error.strerror or error})") from None
    except UnicodeDecodeError:
        return [], "not UTF-8 text"
    if not text.strip():
        return [], f"empty ({len(text.encode())} bytes)"
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        return [], f"not CSV ({error})"
    header = [RENAMED_COLUMNS.get(name, name) if RENAMED_COLUMNS.get(name) not in lines[0] else name
              for name in lines[0]]
    if "run_id" not in header:
        return [], "its first line is not runs.csv's header (no run_id column)"
    at = header.index("run_id")
    rows = []
    for number, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue
        run_id = fields[at].strip() if len(fields) > at else ""
        if len(fields) != len(header):
            why = "cut short" if len(fields) < len(header) else "an extra field"
            rows.append((number, run_id, None, f"{why}: {len(fields)} fields, expected {len(header)}"))
        else:
            rows.append((number, run_id, dict(zip(header, fields)), ""))
    return rows, None


def _checked_rows(root: Path, runs_csv: Path, warnings: list[str]
                  ) -> tuple[list[dict[str, str]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """runs.csv's rows checked against each run's summary.json and config.yaml; a row that is malformed
    or disagrees with them is rebuilt from them (runs.csv is derived data), one warning per repair. An
    unusable runs.csv is rebuilt from every run folder with a summary.json. Runs without a readable
    summary.json and config.yaml are left out with a warning."""
    listed, unusable = _csv_rows(runs_csv)
    if unusable:
        found = sorted(p.name for p in root.iterdir() if (p / "summary.json").is_file())
        warnings.append(f"{runs_csv}: {unusable}; its rows rebuilt from the summary.json of the {len(found)} "
                        f"run folder(s) in {root}")
        listed = [(0, run_id, None, "") for run_id in found]
    columns = runs_columns()
    rows, summaries, configs = [], {}, {}
    for number, run_id, cells, why in listed:
        where = f"{runs_csv} line {number}" if number else f"{runs_csv}"
        if not run_id or run_id in summaries:
            reason = "names no run" if not run_id else f"repeats run {run_id}"
            warnings.append(f"{where}: {reason}; left out" + (f" ({why})" if why else ""))
            continue
        try:
            summary, config = _read_run(root / run_id)
        except _LeftOut as error:
            warnings.append(f"run {run_id} left out: {error}")
            continue
        meta = {"run_id": run_id, **_meta_from_config(summary, config),
                "train_time_s": summary.get("train_time_s"), "params": summary.get("params")}
        expected = runs_row(summary, meta)
        if cells is not None:
            # epochs and the model: the report takes them from config.yaml anyway (rows of older runs wrote the
            # epochs otherwise, and the backbone of a model that model.factory built); columns the file lacks,
            # and values a summary.json recorded before they existed (bwt_rel, the single_task verdict), are not
            # compared
            wrong = [c for c in columns if c != "epochs" and c in cells and (c in meta or c not in _META)
                     and not (expected[c] is None and c in _ADDED_SINCE) and not _same(cells[c], expected[c])
                     and not (c == "backbone" and cells[c] == ((config.get("model") or {}).get("backbone")))]
            if wrong:
                details = ", ".join(f"{c} {cells.get(c, '') or 'empty'!s} vs {csv_cell(expected[c]) or 'empty'}"
                                    for c in wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
                warnings.append(f"{where} (run {run_id}) disagreed with its summary.json/config.yaml ({details}); "
                                "rebuilt from them")
            row = {c: cells.get(c, "") if c not in wrong else csv_cell(expected[c]) for c in columns}
            row["run_id"] = run_id
        else:
            if number:
                warnings.append(f"{where} (run {run_id}): {why}; rebuilt from its summary.json and config.yaml")
            row = {c: csv_cell(expected.get(c)) for c in columns}
        rows.append(row)
        summaries[run_id], configs[run_id] = summary, config
    return rows, summaries, configs


def _as_table(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Checked runs.csv rows as a table, read as pandas reads the file (same column types)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=runs_columns(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text.seek(0)
    return pd.read_csv(text, dtype={"run_id": str, "strategy": str, "order": str, "epochs": str})


def load_results(root: str | Path) -> Results:
    """Every run listed in ``root/runs.csv`` whose summary.json and config.yaml are readable;
    runs without them are left out with a warning; rows that disagree with them are rebuilt
    (``_checked_rows``). No run at all is a CLBenchError."""
    root = Path(root)
    runs_csv = root / "runs.csv"
    if not root.is_dir():
        raise CLBenchError(f"{root}: results folder not found")
    if not runs_csv.is_file():
        raise CLBenchError(f"{root}: no finished runs ({runs_csv.name} not found); "
                           f"train some first, e.g. python run_bench.py --strategy naive --out {root}")
    warnings: list[str] = []
    checked, summaries, configs = _checked_rows(root, runs_csv, warnings)
    # epochs and the model as config.yaml says them (see _checked_rows)
    rows = [{**row, **_per_metric(summaries[row["run_id"]]), "epochs": epochs_text(configs[row["run_id"]]),
             "backbone": model_text(configs[row["run_id"]]) or row["backbone"]}
            for row in _as_table(checked).to_dict("records")] if checked else []
    if not rows:
        raise CLBenchError(f"{runs_csv}: no finished run to report" + (f" ({warnings[0]})" if warnings else ""))
    runs = pd.DataFrame(rows)
    numeric = _numeric_columns()
    runs = runs.reindex(columns=list(dict.fromkeys([*runs.columns, *numeric, "pass_own_base"])))
    runs[numeric] = runs[numeric].apply(pd.to_numeric, errors="coerce")
    runs["pass_own_base"] = runs["pass_own_base"].astype(str).eq("True")
    runs["reference"] = runs["schedule"].map(lambda name: get_schedule(name).reference)
    runs["setting"] = runs["run_id"].map(lambda run_id: setting_key(configs[run_id]))
    runs["group_key"] = runs["run_id"].map(lambda run_id: group_key(configs[run_id]))
    runs["options"] = runs["run_id"].map(lambda run_id: _options_text(configs[run_id]))
    settings = pd.DataFrame([_settings(configs[run_id]) for run_id in runs["run_id"]]).fillna("unset")
    other = [key for key in settings.columns if settings[key].nunique() > 1]
    runs[other] = settings[other]
    varying = [key for key in [*VARYING_KEYS, *other] if runs[key].nunique(dropna=False) > 1]
    # a strategy run with several option settings (say two EWC lambdas) is one group per setting
    split = {name: {key for key in [*other, "options"] if group[key].nunique() > 1}
             for name, group in runs.groupby("strategy")}
    set_options = any("options" in own for own in split.values()) or bool(runs["options"].astype(bool).any())
    keys = ["strategy", *varying, *["options"] * set_options]
    runs = runs.sort_values(["reference", *keys, "seed"], kind="stable").reset_index(drop=True)
    runs["label"] = runs.apply(_label, axis=1, varying=varying, split=split)
    single, references = _single_task_rule(runs)
    runs = runs.drop(columns=[c for c in single.columns if c in runs]).join(single)
    plan = read_plan(root)
    runs["seed_plan"] = runs["group_key"].map(lambda key: seeds_note(plan.get(key)))
    for label, group in runs.groupby("label", sort=False):
        extended = [note for note in group["seed_plan"].unique() if "added after" in note]
        if extended:
            warnings.append(f"{label}: seeds extended after results were seen ({'; '.join(extended)}); its pass "
                            "rate and intervals mix seeds chosen before and after a look")
        repeated = sorted(group.loc[group["seed"].duplicated(), "seed"].astype(int).unique())
        if repeated:
            warnings.append(f"{label}: several runs with seed {', '.join(map(str, repeated))} (they differ in a "
                            f"setting other than {', '.join(keys)}); they are averaged together")
    return Results(root, runs, summaries, configs, keys, warnings, references)


def log_warnings(results: Results, log: Callable[[str], None] = print) -> None:
    """What loading the results found and did (runs.csv rows repaired from the runs' summary.json, runs left
    out, seeds added after a look), one ``warning: ...`` line each: report and export print them alike."""
    for warning in results.warnings:
        log(f"warning: {warning}")


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
