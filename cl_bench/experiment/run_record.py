"""Everything a finished run writes, gathered in one record: metrics.csv,
matrices, summary.json, losses.csv, timing.csv and its runs.csv row.

Write order: model.pt, then the run folder's files (each atomically), then the
row in runs.csv, then the checkpoint is removed. A run is finished when its
row exists; a run killed between its summary.json and its row gets the row
from summary.json on the next start (``add_runs_row``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cl_bench import results
from cl_bench.atomic import write_text
from cl_bench.config import Config
from cl_bench.dataclass_io import to_dict
from cl_bench.rules import reference_finals
from cl_bench.schedules import Schedule
from cl_bench.yaml_io import load_yaml


@dataclass
class RunRecord:
    """A finished run: its settings, what it measured and what it cost."""

    config: Config
    run_id: str
    schedule: Schedule
    order: list[str]
    classes: dict[str, list[str]]
    data: str  # where the data came from
    evaluated_on: str  # the split the metrics are measured on (val, or the tune split)
    records: list[dict[str, Any]]  # metric records: train_exp, eval_task, metric, value
    losses: list[dict[str, Any]]  # mean loss terms: train_exp, task, term, value
    timings: list[dict[str, Any]]  # per stage: stage, task, epochs, train_s, eval_s, machine
    params: int
    environment: dict[str, str]
    intervals: dict[str, Any]  # per task and metric: bootstrap intervals of base, final, drop; boot_pass_share
    strategy_options: dict[str, Any]  # the strategy's options, defaults filled in

    @property
    def train_time_s(self) -> float:
        return float(sum(t["train_s"] for t in self.timings))

    def write(self, run_dir: Path) -> dict[str, Any]:
        """Write the run's files into ``run_dir`` and its row into the results folder's
        ``runs.csv`` (last, so a run with a row has all its files); returns the summary."""
        config = self.config
        frame = pd.DataFrame(self.records)
        for column, value in (("order", ",".join(self.order)), ("seed", config.run.seed),
                              ("strategy", config.strategy.name), ("run_id", self.run_id)):
            frame.insert(0, column, value)
        write_text(run_dir / "losses.csv", pd.DataFrame(self.losses).to_csv(index=False))
        write_text(run_dir / "timing.csv", pd.DataFrame(self.timings).to_csv(index=False))
        extra = {"run_id": self.run_id, "strategy": config.strategy.name, "schedule": self.schedule.name,
                 "seed": config.run.seed, "order": self.order, "params": self.params,
                 "train_time_s": self.train_time_s, "eval_time_s": float(sum(t["eval_s"] for t in self.timings)),
                 "timings": self.timings, "data": self.data, "evaluated_on": self.evaluated_on,
                 "image_size": config.data.image_size, "strategy_options": self.strategy_options,
                 "classes": self.classes, "environment": self.environment,
                 "intervals": {"confidence": config.run.confidence, "resamples": config.run.bootstrap_resamples,
                               "unit": "evaluated images (see evaluated_on), resampled with replacement "
                                       "(paired for base and final)",
                               "tasks": self.intervals}}
        reference = reference_finals(Path(config.run.out), load_yaml((run_dir / "config.yaml").read_text()),
                                     results.primary_metrics())
        summary = results.write_run_results(run_dir, frame, self.order, extra, schedule=self.schedule,
                                            reference=reference)
        add_runs_row(config, summary)
        return summary


def add_runs_row(config: Config, summary: dict[str, Any]) -> None:
    """Upsert a finished run's row into ``config.run.out/runs.csv``: the last file a run
    writes, so a run with a row has all its files (and one without is not finished)."""
    meta = {"run_id": summary["run_id"], "strategy": config.strategy.name, "seed": config.run.seed,
            "order": ",".join(summary["order"]), "backbone": results.model_text(to_dict(config)),
            "bn_policy": config.train.bn_policy, "image_size": config.data.image_size,
            "epochs": results.epochs_text(to_dict(config)), "train_time_s": summary["train_time_s"],
            "params": summary["params"]}
    results.upsert_run(Path(config.run.out) / "runs.csv", results.runs_row(summary, meta))

