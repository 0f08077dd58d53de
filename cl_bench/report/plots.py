"""Report figures (seaborn on matplotlib's Agg canvas, no pyplot state): each function writes one PNG
and returns its path.

Every group (strategy label) keeps one colour and one marker across figures (``colours``,
``markers``: 20 distinct of each); error bars of metrics are 95 % Student's t intervals of the
mean over seeds clipped to the metric's range (``seed_interval``; single runs add their bootstrap
interval over val images in the final-metrics figure), dots are single runs.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cl_bench.atomic import atomic_path
from cl_bench.bootstrap import seed_summary
from cl_bench.model.challenge_rules import MAX_LATENCY_MS, MAX_PARAMS, MAX_TRAIN_HOURS
from cl_bench.results import primary_metrics
from cl_bench.tasks import metric_label, reported_metrics

DPI = 120
Colours = dict[str, tuple[float, float, float]]
# one marker per group, beside its colour, so groups stay apart in grey print and for colour-blind readers
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "H", "8", "1", "2", "3", "4", "+")


def colours(labels: list[str]) -> Colours:
    """A distinct colour per group: tab20's dark shades, then its light ones (20 in all), then evenly
    spaced hues (husl) for more groups."""
    if len(labels) > 20:
        return dict(zip(labels, sns.color_palette("husl", len(labels))))
    tab20 = sns.color_palette("tab20", 20)
    return dict(zip(labels, [tab20[i] for i in [*range(0, 20, 2), *range(1, 20, 2)]]))


def markers(labels: list[str]) -> dict[str, str]:
    """A marker per group (``MARKERS``, cycling past 20 groups, where the colours still differ)."""
    return {label: MARKERS[i % len(MARKERS)] for i, label in enumerate(labels)}


def _figure(columns: int, width: float, height: float, **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure on an Agg canvas with a row of ``columns`` axes."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, np.atleast_1d(fig.subplots(1, columns, **kwargs))


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    return path


def _legend(fig: Figure, handles: list, title: str | None = None) -> None:
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 3),
               frameon=False, title=title)


def _patches(palette: Colours, labels: list[str]) -> list[Patch]:
    return [Patch(color=palette[label], label=label) for label in labels]


def matrix_figure(label: str, matrices: list[pd.DataFrame], forgetting: list[pd.DataFrame], sequential: bool,
                  path: Path) -> Path:
    """Mean R of the primary metrics (colour: value / the task's best stage; text: value and, below
    the diagonal of sequential runs, the drop from the task's base) and, for sequential runs, the
    mean forgetting F in points."""
    R = pd.concat(matrices).groupby(level=0, sort=False).mean()
    tasks = list(R.columns)
    names = {t: f"{t}\n({metric_label(primary_metrics()[t])})" for t in tasks}
    text = R.map(lambda v: "" if math.isnan(v) else f"{v:.4f}")
    if sequential:
        # a zero base has no relative drop: NaN, and no text where every run has one
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings(action="ignore",
                                                                                      category=RuntimeWarning):
            drops = [(m.to_numpy().diagonal() - m.to_numpy()) / m.to_numpy().diagonal() * 100 for m in matrices]
            drop = np.nanmean(np.where(np.isfinite(drops), drops, np.nan), axis=0)
        for i in range(len(R)):
            for j in range(i):
                if not math.isnan(drop[i, j]):
                    text.iat[i, j] += f"\ndrop {drop[i, j]:.1f} %"
    best = R.max()
    shade = R / best.where(best > 0)
    panels = 2 if sequential else 1
    fig, axes = _figure(panels, 1.9 * len(tasks) * panels + 2.2 * panels, 0.9 * len(R) + 2.2)
    ax = axes[0]
    sns.heatmap(shade.rename(columns=names), annot=text.rename(columns=names).to_numpy(), fmt="", cmap="viridis",
                vmin=0, vmax=1, mask=R.isna().to_numpy(), linewidths=0.5, ax=ax,
                cbar_kws={"label": "value / task's best stage"})
    ax.set(title="R: primary metric after each stage", xlabel="evaluated task (metric)", ylabel="")
    ax.tick_params(axis="y", rotation=0)
    if sequential:
        F = pd.concat(forgetting).groupby(level=0, sort=False).mean() * 100
        limit = max(float(np.nanmax(np.abs(F.to_numpy()))) if F.notna().any().any() else 0.0, 1.0)
        ax = axes[1]
        sns.heatmap(F.rename(columns=names), annot=True, fmt=".2f", cmap="RdBu_r", vmin=-limit, vmax=limit,
                    mask=F.isna().to_numpy(), linewidths=0.5, ax=ax,
                    cbar_kws={"label": "points (> 0: forgotten)"})
        ax.set(title="F: best earlier value − current (points)", xlabel="evaluated task (metric)", ylabel="")
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(f"{label}: mean of {len(matrices)} run(s)")
    fig.tight_layout()
    return _save(fig, path)


def seed_interval(values: pd.Series, low: float = -math.inf, high: float = math.inf) -> tuple[float, float]:
    """Error bars: Student's t interval of the mean over seeds, clipped to [low, high] (the values'
    range: a metric cannot exceed 1); a single value: none."""
    summary = seed_summary(values.tolist())
    ci = summary.ci if summary.ci is not None else (summary.mean, summary.mean)
    return max(ci[0], low), min(ci[1], high)


def metric_interval(values: pd.Series) -> tuple[float, float]:
    """``seed_interval`` of a metric, clipped to [0, 1]."""
    return seed_interval(values, 0.0, 1.0)


def ratio_interval(values: pd.Series) -> tuple[float, float]:
    """``seed_interval`` of a ratio of metrics, clipped at 0."""
    return seed_interval(values, 0.0)


def _strips(**kwargs: Any) -> None:
    """``sns.stripplot`` with its jitter from a fixed seed (seaborn draws it from NumPy's global generator),
    so the same results redraw the same PNG; the global generator's state is given back."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        sns.stripplot(**kwargs)
    finally:
        np.random.set_state(state)


def final_bars(runs: pd.DataFrame, palette: Colours, path: Path) -> Path:
    """Final value of each metric per group: bars = mean, error bars = 95 % t interval over seeds
    (a single run: its bootstrap interval over val images, dotted, when it recorded one), dots = runs."""
    labels = list(palette)
    fig, axes = _figure(len(reported_metrics()), 3.0 * len(reported_metrics()), 3.4)
    for ax, (metric, (task, _)) in zip(axes, reported_metrics().items()):
        column = f"final_{metric}"
        sns.barplot(data=runs, x="label", y=column, hue="label", order=labels, hue_order=labels, palette=palette,
                    errorbar=metric_interval, capsize=0.25, err_kws={"linewidth": 1.2}, legend=False, ax=ax)
        _strips(data=runs, x="label", y=column, order=labels, color="black", size=3.5, ax=ax)
        for x, label in enumerate(labels):
            single = runs[runs["label"] == label]
            low, high = (f"ci_final_{metric}_lo", f"ci_final_{metric}_hi")
            if len(single) == 1 and low in single and single[[low, high]].notna().all(axis=None):
                value = single[column].iloc[0]
                ax.errorbar(x, value, yerr=[[value - single[low].iloc[0]], [single[high].iloc[0] - value]],
                            fmt="none", ecolor="black", capsize=4, linewidth=1.2, linestyle=":")
        ax.set(title=f"{metric_label(metric)} ({task})", xlabel="", ylabel="final value" if ax is axes[0] else "")
        ax.set_xticks([])
        ax.set_ylim(bottom=0)
    fig.suptitle("Final metrics after the last experience (bars: mean; error bars: 95 % interval, Student's t over "
                 "seeds clipped to [0, 1] or, for a single run, bootstrap over val images; dots: runs)")
    fig.tight_layout()
    _legend(fig, _patches(palette, labels))
    return _save(fig, path)


def drop_bars(runs: pd.DataFrame, palette: Colours, threshold_pct: float, path: Path) -> Path:
    """Relative and absolute drop from base to final per task, continual runs only, with the threshold."""
    continual = runs[~runs["reference"]]
    labels = [label for label in palette if label in set(continual["label"])]
    primary = primary_metrics()
    parts = (("drop_rel_pct", "relative drop (% of base)", f"{threshold_pct:g} % threshold"),
             ("drop_abs_pts", "absolute drop (points)", f"{threshold_pct:g} points"))
    fig, axes = _figure(2, 11, 3.8)
    for ax, (part, ylabel, line) in zip(axes, parts):
        long = continual.melt(id_vars=["label", "seed"], value_vars=[f"{part}_{m}" for m in primary.values()],
                              var_name="task", value_name="drop")
        long["task"] = long["task"].map({f"{part}_{m}": f"{t} ({metric_label(m)})" for t, m in primary.items()})
        sns.barplot(data=long, x="task", y="drop", hue="label", hue_order=labels, palette=palette,
                    errorbar=seed_interval,
                    capsize=0.15, err_kws={"linewidth": 1.2}, legend=False, ax=ax)
        ax.axhline(threshold_pct, color="crimson", linestyle="--", linewidth=1.2)
        ax.axhline(0, color="black", linewidth=0.8)
        scale = ""
        if long["drop"].abs().max() > 100:
            ax.set_yscale("symlog", linthresh=10)
            ax.margins(y=0.15)
            scale = ", symlog scale"
        ax.set(title=ylabel.split(" (")[0].capitalize() + " from base to final", xlabel="task (metric)",
               ylabel=ylabel + scale)
        ax.legend(handles=[Line2D([], [], color="crimson", linestyle="--", label=line)], loc="best", fontsize=8)
    fig.suptitle("Forgetting per task (continual runs; > 0: worse than right after training the task; "
                 "error bars: 95 % t interval over seeds)")
    fig.tight_layout()
    _legend(fig, _patches(palette, labels))
    return _save(fig, path)


def _stage_ticks(ax: Axes, names: list[str]) -> None:
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_xlim(0.7, len(names) + 0.3)


def stage_lines(stages: pd.DataFrame, palette: Colours, path: Path) -> Path:
    """Each task's primary metric after every stage: lines for continual groups, dashed
    horizontal lines at the final value of reference groups."""
    continual, reference = stages[~stages["reference"]], stages[stages["reference"]]
    steps = continual.drop_duplicates(["run_id", "stage"]).sort_values("stage")
    orders = steps.groupby("run_id")["stage_name"].agg(tuple).unique()
    count = int((stages if continual.empty else continual)["stage"].max())
    names = [f"{i + 1}: {n}" for i, n in enumerate(orders[0])] if len(orders) == 1 else \
        [f"stage {i}" for i in range(1, count + 1)]
    tasks = [t for t in primary_metrics() if t in set(stages["task"])]
    fig, axes = _figure(len(tasks), 4.0 * len(tasks), 3.6)
    for ax, task in zip(axes, tasks):
        rows = continual[continual["task"] == task]
        if not rows.empty:
            sns.lineplot(data=rows, x="stage", y="value", hue="label", style="label", palette=palette,
                         markers=markers(list(palette)), dashes=False, errorbar=metric_interval, err_style="bars",
                         legend=False, ax=ax)
        for label, value in reference[reference["task"] == task].groupby("label", sort=False)["value"].mean().items():
            ax.axhline(value, color=palette[label], linestyle="--", linewidth=1.4)
        _stage_ticks(ax, names)
        ax.set(title=f"{task}: {metric_label(primary_metrics()[task])}", xlabel="after training stage",
               ylabel="value" if task == tasks[0] else "")
    fig.suptitle("Each task's primary metric across training stages (error bars: 95 % Student's t interval over "
                 "seeds, clipped to [0, 1]; dashed: references)")
    fig.tight_layout()
    shapes = markers(list(palette))
    handles = [Line2D([], [], color=palette[label], marker=shapes[label], label=label)
               for label in palette if label in set(continual["label"])]
    handles += [Line2D([], [], color=palette[label], linestyle="--", label=label)
                for label in palette if label in set(reference["label"])]
    _legend(fig, handles)
    return _save(fig, path)


def loss_lines(losses: pd.DataFrame, palette: Colours, path: Path) -> Path:
    """Mean training loss (term "loss") of each task per experience it was trained (or replayed) in."""
    tasks = [t for t in primary_metrics() if t in set(losses["task"])]
    stages = int(losses["stage"].max())
    fig, axes = _figure(len(tasks), 4.0 * len(tasks), 3.4)
    for ax, task in zip(axes, tasks):
        sns.lineplot(data=losses[losses["task"] == task], x="stage", y="value", hue="label", style="label",
                     palette=palette, markers=markers(list(palette)), dashes=False, errorbar="sd", err_style="bars",
                     legend=False, ax=ax)
        _stage_ticks(ax, [str(i) for i in range(1, stages + 1)])
        ax.set(title=f"{task}: training loss", xlabel="training experience (stage)",
               ylabel="mean loss per experience" if task == tasks[0] else "")
    fig.suptitle("Training loss per experience (mean over the experience's iterations; "
                 "error bars: ± std over seeds)")
    fig.tight_layout()
    _legend(fig, _patches(palette, [label for label in palette if label in set(losses["label"])]))
    return _save(fig, path)


def constraint_panel(constraints: pd.DataFrame, palette: Colours, latency_device: str | None, path: Path) -> Path:
    """Parameters vs 8 M, latency vs 150 ms, longest training time vs 2 h, per group."""
    labels = list(constraints["label"])
    panels = (("params_mean", 1e-6, MAX_PARAMS / 1e6, "parameters (M)", f"limit {MAX_PARAMS / 1e6:g} M", "{:.2f}"),
              ("latency_ms", 1.0, MAX_LATENCY_MS, "latency per 512×512 image (ms)",
               f"limit {MAX_LATENCY_MS:g} ms (T4)", "{:.0f}"),
              ("train_time_s_max", 1 / 60, MAX_TRAIN_HOURS * 60, "longest training time (min)",
               f"limit {MAX_TRAIN_HOURS:g} h", "{:.2f}"))
    fig, axes = _figure(3, 13, 0.45 * len(labels) + 2.2, sharey=True)
    for ax, (column, scale, limit, xlabel, line, fmt) in zip(axes, panels):
        values = constraints[column].to_numpy(dtype=float) * scale
        if np.isnan(values).all():
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center", color="grey")
            ax.set_yticks(range(len(labels)), labels)
        else:
            bars = ax.barh(labels, values, color=[palette[label] for label in labels])
            ax.bar_label(bars, labels=["" if math.isnan(v) else fmt.format(v) for v in values], padding=3,
                         fontsize=8)
        ax.axvline(limit, color="crimson", linestyle="--", linewidth=1.2, label=line)
        ax.set_xlim(0, max(limit, np.nanmax(values, initial=0.0)) * 1.25)
        ax.set(xlabel=xlabel)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].invert_yaxis()
    device = f"latency on {latency_device}" if latency_device else "latency not measured"
    fig.suptitle(f"Challenge constraints ({device}; the rule's reference device is a Colab T4)")
    fig.tight_layout()
    return _save(fig, path)


def _mean_interval(values: pd.Series, low: float = -math.inf) -> tuple[float, float, float]:
    """Mean and its t interval over seeds (clipped at ``low``; NaN for a single value)."""
    values = values.dropna()
    if values.empty:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    lo, hi = seed_interval(values, low)
    return mean, lo, hi


def stability_plasticity(runs: pd.DataFrame, palette: Colours, threshold_pct: float, path: Path) -> Path:
    """One dot per run: x = plasticity (mean over tasks of base / single-task reference), y = stability
    (mean over all but the last task of final / base); a large marker per strategy at its means with 95 % t
    intervals over seeds on both axes; references (no forgetting by construction) drawn hollow at y = 1; the
    threshold lines at 1 − threshold on both axes."""
    shapes = markers(list(palette))
    fig, axes = _figure(1, 7.5, 6.0)
    ax = axes[0]
    shown = runs[runs["plasticity"].notna()]
    for label, group in shown.groupby("label", sort=False):
        colour, marker = palette[label], shapes[label]
        reference = bool(group["reference"].iloc[0])
        y = pd.Series(1.0, index=group.index) if reference else group["stability"]
        ax.scatter(group["plasticity"], y, color=colour, marker=marker, s=22, alpha=0.55,
                   facecolors="none" if reference else colour)
        (mx, xlo, xhi), (my, ylo, yhi) = _mean_interval(group["plasticity"], 0.0), _mean_interval(y, 0.0)
        xerr = None if math.isnan(xlo) else [[mx - xlo], [xhi - mx]]
        yerr = None if math.isnan(ylo) else [[my - ylo], [yhi - my]]
        ax.errorbar(mx, my, xerr=xerr, yerr=yerr, color=colour, marker=marker, markersize=10, capsize=3,
                    linewidth=1.2, markerfacecolor="white" if reference else colour, markeredgecolor=colour,
                    label=label)
    line = 1 - threshold_pct / 100
    ax.axhline(line, color="crimson", linestyle="--", linewidth=1.2)
    ax.axvline(line, color="crimson", linestyle=":", linewidth=1.2)
    ax.set(xlabel="plasticity: mean over tasks of base / single-task reference",
           ylabel="stability: mean over earlier tasks of final / base")
    ax.margins(0.08)
    fig.suptitle("Stability–plasticity: each dot a run, large markers a strategy's mean (error bars: 95 % Student's "
                 f"t interval over seeds); dashed: {threshold_pct:g} % below base, dotted: {threshold_pct:g} % below "
                 "the single-task reference; hollow: references", wrap=True)
    fig.tight_layout()
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, fontsize=8)
    return _save(fig, path)


def single_task_ratio_bars(runs: pd.DataFrame, palette: Colours, threshold_pct: float, path: Path) -> Path:
    """Each task's final / single-task reference per group (primary metrics): bars = mean, error bars =
    95 % t interval over seeds (clipped at 0), dots = runs, the line at 1 − threshold."""
    shown = runs[runs["st_status"] != "no reference"]
    labels = [label for label in palette if label in set(shown["label"])]
    primary = primary_metrics()
    long = shown.melt(id_vars=["label", "seed"], value_vars=[f"st_ratio_{m}" for m in primary.values()],
                      var_name="task", value_name="ratio")
    long["task"] = long["task"].map({f"st_ratio_{m}": f"{t} ({metric_label(m)})" for t, m in primary.items()})
    fig, axes = _figure(1, 11, 4.0)
    ax = axes[0]
    sns.barplot(data=long, x="task", y="ratio", hue="label", hue_order=labels, palette=palette,
                errorbar=ratio_interval, capsize=0.1, err_kws={"linewidth": 1.0}, legend=False, ax=ax)
    _strips(data=long, x="task", y="ratio", hue="label", hue_order=labels, palette=["black"] * len(labels),
            dodge=True, size=2.5, legend=False, ax=ax)
    ax.axhline(1 - threshold_pct / 100, color="crimson", linestyle="--", linewidth=1.2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set(xlabel="task (primary metric)", ylabel="final / single-task reference")
    ax.set_ylim(bottom=0)
    fig.suptitle("Each task's final over its single-task reference (bars: mean; error bars: 95 % Student's t "
                 f"interval over seeds, clipped at 0; dots: runs; dashed: {100 - threshold_pct:g} %)")
    fig.tight_layout()
    _legend(fig, _patches(palette, labels))
    return _save(fig, path)
