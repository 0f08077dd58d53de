"""``run_bench.py report``: tables (CSV + markdown), figures (PNG) and report.md for a results folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from cl_bench.atomic import atomic_path, write_text
from cl_bench.devices import describe
from cl_bench.model.challenge_rules import measure_latency_ms
from cl_bench.model.weights_file import load_weights
from cl_bench.report import plots
from cl_bench.report.collect import Results, load_results, log_warnings, run_matrix, stage_values, training_losses
from cl_bench.report.markdown import FigureRef, markdown_table, report_markdown
from cl_bench.report.selection import verdict_lines
from cl_bench.report.tables import Latency, Table, build_tables

# A quick latency: the median of a few passes after one warm-up (check-model uses 5 + 20).
LATENCY_WARMUP, LATENCY_RUNS = 1, 3


def measure_latencies(results: Results, device: torch.device) -> Latency:
    """Latency of each group's model (its first run with a model.pt), measured once per distinct
    model description (config.yaml's ``model`` section and class counts)."""
    measured: dict[str, float] = {}
    ms: dict[str, float] = {}
    for label, group in tqdm(results.runs.groupby("label", sort=False), desc="latency", disable=None):
        weights = [results.root / r / "model.pt" for r in group["run_id"] if (results.root / r / "model.pt").is_file()]
        if not weights:
            continue
        run_id = weights[0].parent.name
        classes = {t: len(c) for t, c in results.summaries[run_id].get("classes", {}).items()}
        key = json.dumps([results.configs[run_id]["model"], classes], sort_keys=True)
        if key not in measured:
            measured[key] = measure_latency_ms(load_weights(weights[0]).model, device, warmup=LATENCY_WARMUP,
                                               runs=LATENCY_RUNS)
        ms[label] = measured[key]
    name = describe(device)
    return Latency(ms, name, "T4" in name, LATENCY_RUNS)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def write_table(table: Table, folder: Path, keys: int) -> None:
    with atomic_path(folder / f"{table.name}.csv") as tmp:
        table.data.to_csv(tmp, index=False)
    write_text(folder / f"{table.name}.md", f"## {table.title}\n\n{markdown_table(table.view, keys)}\n{table.note}\n")


def make_figures(results: Results, tables: dict[str, Table], latency: Latency | None,
                 folder: Path) -> dict[str, list[FigureRef]]:
    runs = results.runs
    palette = plots.colours(results.labels)
    threshold = results.threshold_pct
    figures: dict[str, list[FigureRef]] = {
        "final": [FigureRef("Final metrics", plots.final_bars(runs, palette, folder / "final_metrics.png"),
                            "Final value of each metric per strategy; error bars: 95 % t interval over seeds (a "
                            "single run: its bootstrap interval over val images, dotted), dots: single runs.")],
        "stages": [FigureRef("Metrics across stages", plots.stage_lines(stage_values(results), palette,
                                                                         folder / "stages.png"),
                             "Each task's primary metric after every training stage; dashed lines: references.")],
        "drops": [], "matrices": [], "losses": [], "tradeoff": [],
        "constraints": [FigureRef("Constraints", plots.constraint_panel(
            tables["constraints"].data, palette,
            latency.device if latency else None, folder / "constraints.png"),
            "Parameters vs 8 M, latency per 512×512 image vs 150 ms (the rule's device is a T4), "
            "longest training time vs 2 h.")],
    }
    if not runs["reference"].all():
        figures["drops"].append(FigureRef("Drops", plots.drop_bars(runs, palette, threshold, folder / "drops.png"),
                                          f"Drop from base to final per task (continual runs); dashed: the "
                                          f"{threshold:g} % (left) and {threshold:g} point (right) lines."))
    if runs["plasticity"].notna().any():
        figures["tradeoff"] += [
            FigureRef("Stability and plasticity", plots.stability_plasticity(
                runs, palette, threshold, folder / "stability_plasticity.png"),
                "Each run's plasticity (mean over tasks of base / single-task reference: how well it learns each "
                "task) against its stability (mean over earlier tasks of final / base: how much it keeps); large "
                "markers: a strategy's mean with 95 % Student's t intervals over seeds; the single_task rule "
                f"asks for every task's final ≥ {100 - threshold:g} % of the reference, the own_base rule for every "
                f"earlier task's final ≥ {100 - threshold:g} % of its base (lines)."),
            FigureRef("Final / single-task per task", plots.single_task_ratio_bars(
                runs, palette, threshold, folder / "final_vs_single_task.png"),
                "Each task's final over the single-task reference of the same setting; error bars: 95 % Student's "
                f"t interval over seeds (clipped at 0); dashed: {100 - threshold:g} %, the single_task rule's line.")]
    losses = training_losses(results)
    if not losses.empty:
        figures["losses"].append(FigureRef("Training loss", plots.loss_lines(losses, palette, folder / "losses.png"),
                                           "Mean training loss (sum of the task's loss terms) per experience."))
    for label, group in tqdm(runs.groupby("label", sort=False), desc="matrices", disable=None):
        sequential = not group["reference"].iloc[0]
        matrices = [run_matrix(results, r) for r in group["run_id"]]
        forgetting = [run_matrix(results, r, "forgetting") for r in group["run_id"]] if sequential else []
        path = plots.matrix_figure(label, matrices, forgetting, sequential, folder / f"matrix_{_slug(label)}.png")
        figures["matrices"].append(FigureRef(f"{label}: result matrix", path,
                                             f"{label}: R (and forgetting F) of the primary metrics, mean of "
                                             f"{len(group)} run(s)."))
    return figures


def build_report(results_dir: str | Path, out: str | Path, device: torch.device | None,
                 log: Callable[[str], None] = print, rule: str | None = None) -> Path:
    """Write ``out/tables/``, ``out/figures/`` and ``out/report.md``; latency is measured on
    ``device`` (None: not measured); ``rule``: the rule the report leads with (None: the results'
    default). Returns the path of report.md."""
    out = Path(out)
    results = load_results(results_dir)
    rule = results.rule(rule)
    log_warnings(results, log)
    latency = measure_latencies(results, device) if device is not None else None
    tables = {t.name: t for t in build_tables(results, latency, rule)}
    for table in tables.values():
        write_table(table, out / "tables", 2 if table.name == "runs" else len(results.keys))
    figures = make_figures(results, tables, latency, out / "figures")
    written = {f.path.name for refs in figures.values() for f in refs}
    for stale in (out / "figures").glob("*.png"):  # figures of groups or kinds this report no longer has
        if stale.name not in written:
            stale.unlink()
    report = out / "report.md"
    verdicts = verdict_lines(results)
    write_text(report, report_markdown(results, tables, figures, latency, out, rule, verdicts))
    log(f"report of {len(results.runs)} runs in {results.runs['label'].nunique()} groups under the {rule} rule: "
        f"{report} ({len(tables)} tables in {out / 'tables'}, {sum(map(len, figures.values()))} figures in "
        f"{out / 'figures'})")
    for line in verdicts:
        log(line)
    return report
