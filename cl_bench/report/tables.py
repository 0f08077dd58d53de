"""Report tables: the runs grouped by strategy (and the settings that vary), mean ± std over seeds,
each number with its interval.

Each ``Table`` holds the numbers (``data``, written as CSV: ``<column>_mean``,
``<column>_std``, ``<column>_lo`` and ``<column>_hi``) and their formatted view
(``view``, written as markdown). Intervals: for a group of several runs, Student's
t interval of the mean over seeds; for a single run, its bootstrap interval over
val images (recorded by the run; runs recorded before intervals show none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from cl_bench.bootstrap import format_interval, format_pass, paired_difference, pass_rate_interval, seed_summary
from cl_bench.model.challenge_rules import MAX_LATENCY_MS, MAX_PARAMS, MAX_TRAIN_HOURS
from cl_bench.report.collect import Results
from cl_bench.rules import OWN_BASE, REFERENCE_FOUND, SINGLE_TASK_RULE, reference_drop_interval, rule_definition
from cl_bench.tasks import metric_label, reported_metrics

STD_NOTE = ("mean ± std over seeds (ddof = 1) [95 % interval: Student's t interval of the mean over seeds, clipped "
            "to the metric's range; for a single run, the run's percentile bootstrap over val images, 200 resamples, "
            "when it recorded one]")
ST_NOTE = ("Drop vs single-task = (reference − final) / reference × 100, reference = the mean final of the "
           "single_task runs of the same setting; its interval for a group is Welch's t interval of the difference "
           "of the two means over their seeds (the reference's seed spread widens it as much as the group's own), "
           "for a single run its bootstrap interval of final with the reference held fixed.")


def _interval_columns() -> list[str]:
    """The numbers that get an interval: the metrics and what is derived from them."""
    return ["bwt", "bwt_rel", "mean_normalised_final", "final_vs_single_task", "plasticity", "stability",
            "final_vs_best",
            *[f"{part}_{m}" for m in reported_metrics()
              for part in ("final", "base", "drop_rel_pct", "drop_abs_pts", "st_ratio", "st_drop_rel_pct",
                           "st_drop_abs_pts")]]


def _bounded(column: str) -> tuple[float, float]:
    """The range a column's values (and so its intervals) can take: metrics in [0, 1], ratios of metrics ≥ 0."""
    if column.startswith(("final_", "base_")) and column.split("_", 1)[-1] in reported_metrics():
        return 0.0, 1.0
    ratios = ("final_vs_single_task", "plasticity", "stability", "final_vs_best", "mean_normalised_final", "st_ratio_")
    return (0.0, math.inf) if column.startswith(ratios) else (-math.inf, math.inf)


def _stat_columns() -> list[str]:
    return [*_interval_columns(), "train_time_s", "params"]


@dataclass
class Table:
    name: str
    title: str
    data: pd.DataFrame
    view: pd.DataFrame
    note: str = ""


@dataclass
class Latency:
    """Measured latency per group label (ms per 512x512 image, batch 1) and where."""

    ms: dict[str, float]
    device: str
    on_reference_device: bool
    passes: int


def _interval(values: pd.Series, runs: pd.DataFrame, column: str) -> tuple[float, float]:
    """The t interval of the mean over a group's runs (clipped to the column's range), or a single run's
    bootstrap interval."""
    values = values.dropna()
    if len(values) > 1:
        low, high = seed_summary(values.tolist()).ci
        floor, ceiling = _bounded(column)
        return max(low, floor), min(high, ceiling)
    lo, hi = f"ci_{column}_lo", f"ci_{column}_hi"
    if len(runs) == 1 and lo in runs:
        return float(runs[lo].iloc[0]), float(runs[hi].iloc[0])
    return math.nan, math.nan


def _reference_interval(results: Results, runs: pd.DataFrame, metric: str) -> tuple[float, float]:
    """A group's interval of the relative drop from its single-task reference (``reference_drop_interval``)."""
    settings = runs["setting"].unique()
    if len(runs) < 2 or len(settings) != 1 or settings[0] not in results.references:
        return math.nan, math.nan
    references = results.references[settings[0]]
    return reference_drop_interval(runs[f"final_{metric}"].astype(float).tolist(),
                                   references[f"final_{metric}"].astype(float).tolist())


def aggregate(results: Results) -> pd.DataFrame:
    """One row per group: label, keys, schedule, reference, n_runs, seeds, pass rates under both rules (and
    the mean bootstrap pass share), the longest train time and ``<stat>_mean`` / ``_std`` / ``_lo`` / ``_hi``
    of every reported number."""
    grouped = results.runs.groupby("label", sort=False)
    stats = grouped[_stat_columns()].agg(["mean", "std"])
    stats.columns = [f"{column}_{stat}" for column, stat in stats.columns]
    bounds = {}
    for label, runs in grouped:
        bounds[label] = {}
        for column in _interval_columns():
            lo, hi = _interval(runs[column], runs, column)
            bounds[label][f"{column}_lo"], bounds[label][f"{column}_hi"] = lo, hi
        for metric in reported_metrics():
            if len(runs) > 1 and not runs["reference"].iloc[0]:
                low, high = _reference_interval(results, runs, metric)
                bounds[label][f"st_drop_rel_pct_{metric}_lo"], bounds[label][f"st_drop_rel_pct_{metric}_hi"] = low, high
    head = grouped.agg(**{key: (key, "first") for key in results.keys}, schedule=("schedule", "first"),
                       reference=("reference", "first"), n_runs=("run_id", "size"),
                       seeds=("seed", lambda s: ",".join(str(int(v)) for v in sorted(s))),
                       seed_plan=("seed_plan", lambda s: " / ".join(dict.fromkeys(s))),
                       pass_rate=("pass_own_base", "mean"), pass_rate_single_task=("pass_single_task", "mean"),
                       st_runs=("pass_single_task", "count"), boot_pass_share=("boot_pass_share", "mean"),
                       train_time_s_max=("train_time_s", "max"),
                       **{f"pass_rate_{m}": (f"pass_{m}", "mean") for m in reported_metrics()},
                       **{f"pass_rate_single_task_{m}": (f"st_pass_{m}", "mean") for m in reported_metrics()},
                       **{f"boot_pass_share_{m}": (f"boot_pass_share_{m}", "mean") for m in reported_metrics()},
                       **{f"st_reference_{m}": (f"st_reference_{m}", "first") for m in reported_metrics()})
    return head.join(stats).join(pd.DataFrame.from_dict(bounds, orient="index")).reset_index()


def _number(value: float, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def mean_std(frame: pd.DataFrame, column: str, fmt: str, scale: float = 1.0) -> pd.Series:
    """``"mean ± std [lo, hi]"`` strings of ``column_mean`` / ``_std`` / ``_lo`` / ``_hi`` (std left out
    when NaN, the interval when there is none)."""
    def cell(mean: float, std: float, lo: float, hi: float) -> str:
        if math.isnan(mean):
            return "–"
        if math.isnan(lo) or math.isnan(hi):
            return _number(mean * scale, fmt) if math.isnan(std) else f"{mean * scale:{fmt}} ± {std * scale:{fmt}}"
        interval = format_interval(mean * scale, lo * scale, hi * scale, fmt)
        return interval if math.isnan(std) else interval.replace(" [", f" ± {std * scale:{fmt}} [", 1)
    missing = pd.Series(math.nan, index=frame.index)
    parts = [frame.get(f"{column}_{stat}", missing) for stat in ("mean", "std", "lo", "hi")]
    return pd.Series([cell(*values) for values in zip(*parts)], index=frame.index)


def _pass_rate(frame: pd.DataFrame, column: str, share_column: str | None = None,
               counted: str = "n_runs") -> pd.Series:
    """``pass`` / ``fail`` for a single run, ``67 % [9 %, 99 %]`` for a group (the bracket: the exact 95 %
    interval of the pass rate over the group's seeds); a single run's bootstrap pass share in parentheses
    when ``share_column`` is given; references: ``by construction``, no verdict: ``no reference``."""
    def cell(reference: bool, n: float, rate: float, share: float) -> str:
        if reference and share_column is not None:
            return "by construction"
        if math.isnan(rate) or n == 0:
            return ("is the reference" if reference else "no reference") if share_column is None else "–"
        n = int(n)
        if n == 1:
            verdict = "pass" if rate else "fail"
            return verdict if math.isnan(share) else format_pass(bool(rate), share)
        low, high = pass_rate_interval(round(rate * n), n)
        return f"{100 * rate:.0f} % [{100 * low:.0f} %, {100 * high:.0f} %]"
    shares = frame[share_column] if share_column else pd.Series(math.nan, index=frame.index)
    return pd.Series([cell(*values) for values in zip(frame["reference"], frame[counted], frame[column], shares)],
                     index=frame.index)


def _keys(frame: pd.DataFrame, results: Results) -> pd.DataFrame:
    view = frame[results.keys].astype(str).copy()
    if "options" in view:
        view["options"] = view["options"].replace("", "default")
    view["strategy"] = [s + (" (reference)" if ref else "") for s, ref in zip(frame["strategy"], frame["reference"])]
    return view


def _numbers(frame: pd.DataFrame, results: Results, columns: list[str]) -> pd.DataFrame:
    stats = [f"{c}_{s}" for c in columns for s in ("mean", "std", "lo", "hi") if f"{c}_{s}" in frame]
    return frame[[*results.keys, "schedule", "n_runs", *[c for c in columns if c in frame], *stats]]


def rule_columns(results: Results, rule: str) -> tuple[str, str]:
    """The overview's pass-rate column names, the ``rule``'s first."""
    names = {SINGLE_TASK_RULE: f"pass rate, single_task rule ({results.threshold_pct:g} %)",
             OWN_BASE: f"pass rate, own_base rule ({results.threshold_pct:g} %)"}
    return names[rule], names[OWN_BASE if rule == SINGLE_TASK_RULE else SINGLE_TASK_RULE]


def overview_table(frame: pd.DataFrame, results: Results, rule: str) -> Table:
    view = _keys(frame, results)
    view["runs"] = frame["n_runs"].astype(str)
    view["seeds"] = frame["seeds"]
    view["seed plan"] = frame["seed_plan"]
    rates = {SINGLE_TASK_RULE: _pass_rate(frame, "pass_rate_single_task", counted="st_runs"),
             OWN_BASE: _pass_rate(frame, "pass_rate", "boot_pass_share")}
    first, second = rule_columns(results, rule)
    view[first] = rates[rule]
    view["final / single-task"] = mean_std(frame, "final_vs_single_task", ".3f")
    view["plasticity"] = mean_std(frame, "plasticity", ".3f")
    view["stability"] = mean_std(frame, "stability", ".3f")
    view[second] = rates[OWN_BASE if rule == SINGLE_TASK_RULE else SINGLE_TASK_RULE]
    view["BWT (rel.)"] = mean_std(frame, "bwt_rel", ".3f")
    view["BWT (raw)"] = mean_std(frame, "bwt", ".4f")
    view["train time (s)"] = mean_std(frame, "train_time_s", ".1f")
    view["parameters (M)"] = mean_std(frame, "params", ".3f", 1e-6)
    data = _numbers(frame, results, ["seeds", "seed_plan", "pass_rate_single_task", "pass_rate", "boot_pass_share",
                                     "final_vs_single_task", "plasticity", "stability", "bwt_rel", "bwt",
                                     "mean_normalised_final", "final_vs_best", "train_time_s", "params"])
    return Table("overview", "Overview", data, view,
                 f"{STD_NOTE}. Seed plan: the seeds a grid fixed for the group before running it (seed_plan.json), "
                 "and any added after its first results existed. "
                 f"Verdicts under the {rule} rule first (the rule this report ranks by). Pass rate: "
                 "share of runs where every task passes [its exact (Clopper-Pearson) 95 % interval over the seeds]; "
                 f"{rule_definition(SINGLE_TASK_RULE, results.threshold_pct)}; "
                 f"{rule_definition(OWN_BASE, results.threshold_pct)}. For a single run, the own_base verdict's "
                 "bootstrap share: the share of its resamples of val images in which every task passes (product "
                 "over tasks, each resampled over its own images) — how stable the verdict is under other val "
                 "images, not a probability of passing, and blind to the spread over seeds (the pass rate over "
                 "seeds shows that). final / single-task = mean over tasks of final / the single-task reference's "
                 "final; plasticity = mean over tasks of base / the reference's final; stability = mean over all "
                 "but the last task of final / base. BWT (rel.) = mean over all but the last task of "
                 "(final − base) / base; BWT (raw) = the same of (final − base), in each metric's own units.")


def final_table(frame: pd.DataFrame, results: Results) -> Table:
    view = _keys(frame, results)
    for metric, (task, _) in reported_metrics().items():
        view[f"{metric_label(metric)} ({task})"] = mean_std(frame, f"final_{metric}", ".4f")
    return Table("final", "Final metrics (after the last experience)",
                 _numbers(frame, results, [f"final_{m}" for m in reported_metrics()]), view,
                 f"{STD_NOTE}; metrics in [0, 1].")


def metric_table(frame: pd.DataFrame, results: Results, metric: str) -> Table:
    task = reported_metrics()[metric][0]
    view = _keys(frame, results)
    view["base"] = mean_std(frame, f"base_{metric}", ".4f")
    view["final"] = mean_std(frame, f"final_{metric}", ".4f")
    view["own_base: drop (rel. %)"] = mean_std(frame, f"drop_rel_pct_{metric}", ".1f")
    view["own_base: drop (abs. pts)"] = mean_std(frame, f"drop_abs_pts_{metric}", ".2f")
    view[f"own_base: pass rate ({results.threshold_pct:g} %)"] = _pass_rate(
        frame, f"pass_rate_{metric}", f"boot_pass_share_{metric}")
    view["single-task reference"] = [_number(v, ".4f") for v in frame[f"st_reference_{metric}"]]
    view["single_task: final / reference"] = mean_std(frame, f"st_ratio_{metric}", ".3f")
    view["single_task: drop (rel. %)"] = mean_std(frame, f"st_drop_rel_pct_{metric}", ".1f")
    view["single_task: drop (abs. pts)"] = mean_std(frame, f"st_drop_abs_pts_{metric}", ".2f")
    view[f"single_task: pass rate ({results.threshold_pct:g} %)"] = _pass_rate(
        frame, f"pass_rate_single_task_{metric}", counted="st_runs")
    columns = [f"{part}_{metric}" for part in ("base", "final", "drop_rel_pct", "drop_abs_pts", "st_ratio",
                                               "st_drop_rel_pct", "st_drop_abs_pts")]
    data = _numbers(frame, results, [*columns, f"pass_rate_{metric}", f"boot_pass_share_{metric}",
                                     f"st_reference_{metric}", f"pass_rate_single_task_{metric}"])
    return Table(f"metric_{metric}", f"{metric_label(metric)} ({task})", data, view,
                 f"{STD_NOTE}. Base: right after training on {task}; final: after the last experience; "
                 "own_base drop (rel.) = (base − final) / base × 100, drop (abs.) = (base − final) × 100 points. "
                 + ST_NOTE)


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "INFO"}[passed]


def constraint_table(frame: pd.DataFrame, results: Results, latency: Latency | None) -> Table:
    data = frame[["label", *results.keys, "n_runs", "params_mean", "train_time_s_max"]].copy()
    data["latency_ms"] = [latency.ms.get(label, math.nan) if latency else math.nan for label in frame["label"]]
    view = _keys(frame, results)
    view[f"parameters (M, < {MAX_PARAMS / 1e6:g})"] = [
        f"{p / 1e6:.3f} {_verdict(bool(p < MAX_PARAMS))}" for p in data["params_mean"]]
    if latency:
        view[f"latency (ms, ≤ {MAX_LATENCY_MS:g} on a T4)"] = [
            f"{ms:.1f} {_verdict(bool(ms <= MAX_LATENCY_MS) if latency.on_reference_device else None)}"
            if not math.isnan(ms) else "–" for ms in data["latency_ms"]]
    view[f"train time, longest run (h, ≤ {MAX_TRAIN_HOURS:g})"] = [
        f"{s / 3600:.3f} {_verdict(bool(s <= MAX_TRAIN_HOURS * 3600))}" for s in data["train_time_s_max"]]
    where = (f"Latency: median of {latency.passes} timed forward passes after a warm-up (batch 1, eval mode, "
             f"512×512) on {latency.device}"
             + ("" if latency.on_reference_device else "; INFO: not the T4 the rule refers to") + ". "
             if latency else "Latency not measured. ")
    return Table("constraints", "Challenge constraints", data, view,
                 where + "Train time: sum of the training stages of one run (evaluation excluded).")


def paired_table(results: Results) -> Table:
    """Each pair of continual groups run with at least two common seeds: the mean paired
    difference (first minus second) of final / single-task and of each final primary
    metric, with its t interval over the common seeds."""
    continual = results.runs[~results.runs["reference"]]
    measures = {"final / single-task": "final_vs_single_task",
                **{f"{metric_label(m)} ({t}) final": f"final_{m}" for m, (t, part) in reported_metrics().items()
                   if part == "primary"}}
    rows, cells = [], []
    labels = list(dict.fromkeys(continual["label"]))
    for i, first in enumerate(labels):
        for second in labels[i + 1:]:
            a, b = (continual[continual["label"] == label].set_index("seed") for label in (first, second))
            seeds = sorted(set(a.index) & set(b.index))
            if len(seeds) < 2:
                continue
            row = {"first": first, "second": second, "seeds": ",".join(str(int(s)) for s in seeds)}
            cell = dict(row)
            for name, column in measures.items():
                diff = paired_difference(a.loc[seeds, column].tolist(), b.loc[seeds, column].tolist())
                row.update({f"{column}_diff": diff.mean, f"{column}_lo": diff.ci[0], f"{column}_hi": diff.ci[1]})
                cell[f"Δ {name}"] = format_interval(diff.mean, *diff.ci, ".4f")
            rows.append(row)
            cells.append(cell)
    view = pd.DataFrame(cells) if cells else pd.DataFrame({"first": [], "second": [], "seeds": []})
    return Table("paired", "Paired comparison over common seeds", pd.DataFrame(rows), view,
                 "Δ = first − second, averaged over the seeds both were run with, [95 % Student's t interval of the "
                 "mean paired difference]; an interval that contains 0 does not tell the two apart.")


def _yes(value: object) -> str:
    return "yes" if value is True or value == 1 else "no"


def runs_table(results: Results) -> Table:
    runs = results.runs
    data = runs[["run_id", "strategy", "seed", "schedule", "pass_own_base", "pass_single_task", "st_status",
                 "bonus_own_base", "bonus_single_task",
                 "final_vs_single_task", "mean_normalised_final", "bwt", "bwt_rel", "train_time_s",
                 *[f"final_{m}" for m in reported_metrics()]]]

    def single(status: str, passed: float) -> str:
        return {REFERENCE_FOUND: "yes" if passed == 1 else "no"}.get(status, status)
    view = pd.DataFrame({"run": runs["run_id"], "strategy": _keys(runs, results)["strategy"],
                         "seed": runs["seed"].astype(int).astype(str),
                         "pass (single_task)": ["(reference)" if status == "is the reference" else single(status, ok)
                                                for status, ok in zip(runs["st_status"], runs["pass_single_task"])],
                         "pass (own_base)": ["(reference)" if ref else ("yes" if ok else "no")
                                             for ref, ok in zip(runs["reference"], runs["pass_own_base"])],
                         "bonus (single_task / own_base)": [
                             f"{_yes(st) if status == REFERENCE_FOUND else '–'} / {'–' if ref else _yes(own)}"
                             for status, st, ref, own in zip(runs["st_status"], runs["bonus_single_task"],
                                                             runs["reference"], runs["bonus_own_base"])],
                         "final / single-task": [_number(v, ".3f") for v in runs["final_vs_single_task"]],
                         **{metric_label(m): [_number(v, ".4f") for v in runs[f"final_{m}"]]
                            for m in reported_metrics()}})
    return Table("runs", "Every run", data, view, "One row per finished run (runs.csv in the results folder). "
                 "Bonus: every final at or above its single-task reference / its own base.")


def build_tables(results: Results, latency: Latency | None, rule: str) -> list[Table]:
    frame = aggregate(results)
    return [overview_table(frame, results, rule), final_table(frame, results),
            *[metric_table(frame, results, m) for m in reported_metrics()], paired_table(results),
            constraint_table(frame, results, latency), runs_table(results)]
