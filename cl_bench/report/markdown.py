"""Markdown: tables as pipe tables, and report.md (setup, definitions, tables, figures)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cl_bench.devices import LIBRARIES
from cl_bench.report.collect import Results
from cl_bench.report.tables import Latency, Table
from cl_bench.results import model_text, primary_metrics
from cl_bench.rules import OWN_BASE, SINGLE_TASK_RULE, rule_definition


@dataclass
class FigureRef:
    title: str
    path: Path
    caption: str


def markdown_table(view: pd.DataFrame, left: int = 1) -> str:
    """A pipe table of string cells; the first ``left`` columns left-aligned, the rest right-aligned."""
    def row(cells: list[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
    align = ["---" if i < left else "---:" for i in range(len(view.columns))]
    return "\n".join([row(list(view.columns)), "|" + "|".join(align) + "|", *(row(list(r)) for r in view.itertuples(
        index=False))]) + "\n"


def table_section(table: Table, keys: int, level: str = "###") -> str:
    return f"{level} {table.title}\n\n{markdown_table(table.view, keys)}\n{table.note}\n"


def _part_rates(per_task: dict) -> str:
    """``det: backbone 0 (frozen); cls: backbone 0 (frozen), neck 0.3`` from ``train.part_lr_per_task``."""
    return "; ".join(f"{task}: " + ", ".join(f"{part} {scale:g}" + (" (frozen)" if scale == 0 else "")
                                              for part, scale in rates.items() if scale is not None)
                     for task, rates in per_task.items())


def _environments(results: Results) -> tuple[str, str]:
    """Devices (each stage's machine where the runs recorded it) and library versions the runs recorded
    (runs made before they were recorded say so)."""
    envs = [summary.get("environment") for summary in results.summaries.values()]
    recorded = [env for env in envs if env]
    machines = []
    for summary, env in zip(results.summaries.values(), envs):
        stages = [timing["machine"] for timing in summary.get("timings", []) if "machine" in timing]
        machines += stages or ([env["device"]] if env else [])
    devices = _text(list(dict.fromkeys(machines))) if machines else "not recorded"
    versions = list(dict.fromkeys(
        f"Python {env['python']}, " + ", ".join(f"{name} {env[name]}" for name in LIBRARIES) for env in recorded))
    return devices, _text(versions) if versions else "not recorded"


def _code_versions(results: Results) -> str:
    """The cl_bench commits the runs recorded, with how many runs each."""
    commits = Counter((summary.get("environment") or {}).get("cl_bench", "not recorded")
                      for summary in results.summaries.values())
    return "; ".join(f"{commit} ({count} run{'' if count == 1 else 's'})" for commit, count in commits.items())


def _distinct(results: Results, *path: str, runs: pd.DataFrame | None = None) -> list[Any]:
    """Distinct values of a config.yaml entry over ``runs`` (default: all), in run order."""
    values = []
    for run_id in (results.runs if runs is None else runs)["run_id"]:
        value: Any = results.configs[run_id]
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in values:
            values.append(value)
    return values


def _text(values: list[Any]) -> str:
    return "; ".join("none" if v in (None, {}, []) else ", ".join(map(str, v)) if isinstance(v, list) else str(v)
                     for v in values)


def _stage_epochs(results: Results) -> str:
    """Epochs each stage trained, as the runs recorded them (a joint stage is named by its tasks)."""
    epochs: dict[str, list[int]] = {}
    for summary in results.summaries.values():
        for timing in summary.get("timings", []):
            values = epochs.setdefault(timing["task"], [])
            if timing["epochs"] not in values:
                values.append(timing["epochs"])
    return ", ".join(f"{stage} {'/'.join(map(str, values))}" for stage, values in epochs.items()) or "not recorded"


def _model_line(model: dict[str, Any]) -> str:
    """A config's model section in words: the harness's backbone, neck and head, or the factory that built it."""
    if model.get("factory"):
        options = ", ".join(f"{key}={value}" for key, value in (model.get("factory_options") or {}).items())
        return f"{model_text({'model': model})} (the user's own model" + (f"; {options}" if options else "") + ")"
    return (f"{model['backbone']} backbone (initial weights: {model['backbone_weights']}), {model['neck']} neck "
            f"({model['neck_channels']} ch), {model['head_layers']}-layer head ({model['head_channels']} ch)")


def setup_section(results: Results, latency: Latency | None) -> str:
    runs = results.runs
    data = list(dict.fromkeys(results.summaries[r].get("data", "?") for r in runs["run_id"]))
    classes = results.summaries[runs["run_id"].iloc[0]].get("classes", {})
    class_counts = ", ".join(f"{task} {len(classes[task])}" for task in primary_metrics() if task in classes)
    strategies = []
    for strategy, group in runs.groupby("strategy", sort=False):
        options = _text(_distinct(results, "strategy", "options", runs=group))
        kind = " (reference)" if group["reference"].iloc[0] else ""
        strategies.append(f"{strategy}{kind}" + ("" if options == "none" else f" [options: {options}]"))
    model = [_model_line(m) for m in _distinct(results, "model")]
    train = [f"batch size {t['batch_size']}, AdamW lr {t['lr']:g}"
             + (f" (per task: {t['lr_per_task']})" if t["lr_per_task"] else "")
             + (f", backbone at {t['backbone_lr_scale']:g}× the rate" if t.get("backbone_lr_scale", 1.0) != 1.0 else "")
             + (f", part rates per task {_part_rates(t['part_lr_per_task'])}" if t.get("part_lr_per_task") else "")
             + (f", loss weights {t['task_weights']}" if t.get("task_weights") else "")
             + f", weight decay {t['weight_decay']:g}, cosine decay per experience, BatchNorm policy {t['bn_policy']}"
             for t in _distinct(results, "train")]
    seeds = ", ".join(str(int(s)) for s in sorted(runs["seed"].unique()))
    measured = f"; latency below measured on {latency.device}" if latency else ""
    devices, versions = _environments(results)
    lines = [
        f"- **Data**: {_text(data)}; classes: {class_counts}; train split "
        f"`{_text(_distinct(results, 'data', 'train_split'))}`, evaluation split "
        f"`{_text(_distinct(results, 'data', 'test_split'))}`.",
        f"- **Task order**: {_text([o.replace(',', ' → ') for o in runs['order'].unique()])}.",
        f"- **Model**: {_text(model)}; {_text([f'{p / 1e6:.3f} M' for p in runs['params'].unique()])} parameters.",
        f"- **Input**: {_text([f'{s}×{s} px' for s in _distinct(results, 'data', 'image_size')])} (square resize), "
        f"training augmentation {_text(['on' if a else 'off' for a in _distinct(results, 'data', 'augment')])}.",
        f"- **Training**: epochs per stage {_stage_epochs(results)}; {_text(train)}.",
        f"- **Strategies**: {'; '.join(strategies)}.",
        f"- **Seeds**: {seeds} ({len(runs)} runs in {runs['label'].nunique()} groups).",
        f"- **Device** of the runs: {devices}{measured}.",
        f"- **Libraries** of the runs: {versions}.",
        f"- **Code** (cl_bench git commit) of the runs: {_code_versions(results)}.",
    ]
    return "## Setup\n\n" + "\n".join(lines) + "\n"


def definitions_section(results: Results) -> str:
    thresholds = sorted(results.runs["threshold_pct"].dropna().unique())
    own = " / ".join(rule_definition(OWN_BASE, t) for t in thresholds)
    single = " / ".join(rule_definition(SINGLE_TASK_RULE, t) for t in thresholds)
    return ("## Definitions\n\n"
            "- **Base** of a task: its metric right after the experience that trains it; **final**: after the last "
            "experience. Primary metrics: segmentation mIoU, detection COCO mAP (mAP@[.5:.95]), classification "
            "Top-1; mAP@0.5 is shown as well. All metrics are in [0, 1].\n"
            "- **Two readings of the 5 % rule**, both computed for every continual run. **single_task** (the "
            f"challenge's headline): {single}; a run whose setting has no single_task run gets \"no reference\", "
            "never a guess. It rewards learning every task as well as a model trained on it alone, and keeping "
            f"it. **own_base** (the challenge's section 3): {own}. A task learned badly keeps a small base that is "
            "easy to keep, and the last task cannot drop, so a strategy that learns the later tasks little passes "
            "it. Each shows relative and absolute (points) drops; the **bonus** asks for every final at or above "
            "its base (own_base) or its reference (single_task).\n"
            "- **References** (joint training, single-task training) have no later experience to forget in: "
            "base = final; they are upper bounds, not continual results.\n"
            "- **final / single-task** = mean over tasks of final / the single-task reference's final: how close "
            "the one continual model comes to a model trained on each task alone (the score `export --select` "
            "ranks by). **Plasticity** = mean over tasks of base / the reference's final; **stability** = mean over "
            "all but the last task of final / base. **BWT (rel.)** = mean over all but the last task of "
            "(final − base) / base; **BWT (raw)** = the same of final − base, in each metric's units (segmentation's "
            "swamp detection's). **Mean normalised final** (final / base; CSV only) rewards learning little.\n"
            "- **Bootstrap share**: the share of a run's bootstrap resamples of val images in which its own_base "
            "verdict holds — how stable the verdict is under other val images; not a probability of passing, and "
            "blind to the spread over seeds, which the pass rate over seeds and its interval show.\n"
            "- **Forgetting** F[i][j] = best value of task j after any stage from j to i − 1, minus its value "
            "after stage i.\n")


def verdict_section(rule: str, verdicts: list[str]) -> str:
    lines = "".join(f"- {line}\n" for line in verdicts)
    return (f"## Verdicts\n\nThis report leads with the **{rule}** rule (`--rule` chooses; both are in every "
            f"table).\n\n{lines}")


def figure_section(figures: list[FigureRef], out: Path) -> str:
    return "".join(f"![{f.title}]({f.path.relative_to(out).as_posix()})\n\n*{f.caption}*\n\n" for f in figures)


def report_markdown(results: Results, tables: dict[str, Table], figures: dict[str, list[FigureRef]],
                    latency: Latency | None, out: Path, rule: str, verdicts: list[str]) -> str:
    keys = len(results.keys)
    parts = [
        f"# Results\n\nGenerated by `python run_bench.py report` from `{results.root}` on "
        f"{datetime.now():%Y-%m-%d %H:%M}: {len(results.runs)} runs. Tables are also in `tables/` as CSV "
        "(numbers) and markdown.\n",
        setup_section(results, latency),
        verdict_section(rule, verdicts),
        definitions_section(results),
        "## Results\n",
        table_section(tables["overview"], keys),
        figure_section(figures["tradeoff"], out),
        table_section(tables["final"], keys),
        figure_section(figures["final"], out),
        *(table_section(t, keys, "####") for name, t in tables.items() if name.startswith("metric_")),
        figure_section(figures["drops"] + figures["stages"], out),
        table_section(tables["paired"], 2),
        "### Result matrices per strategy\n\n" + figure_section(figures["matrices"], out),
        "### Training loss\n\n" + (figure_section(figures["losses"], out) or "No losses.csv in the runs.\n\n"),
        table_section(tables["constraints"], keys),
        figure_section(figures["constraints"], out),
        table_section(tables["runs"], 2),
    ]
    if results.warnings:
        parts.append("## Warnings\n\n" + "".join(f"- {w}\n" for w in results.warnings))
    return "\n".join(parts)
