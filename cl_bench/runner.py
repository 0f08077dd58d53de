"""One benchmark run: config -> scenario -> model -> strategy -> evaluation ->
results, resumable after each experience."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import yaml
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import concat_datasets
from avalanche.evaluation.metrics import loss_metrics
from avalanche.logging import InteractiveLogger, TensorboardLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin

from cl_bench import results
from cl_bench.atomic import write_text
from cl_bench.checkpoint import CHECKPOINT, RestoreContext, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from cl_bench.config import Config, to_dict
from cl_bench.devices import environment, resolve_device
from cl_bench.model import build_model
from cl_bench.model.export import save_weights
from cl_bench.tasks import build_tasks
from cl_bench.training.batchnorm import BatchNormPolicyPlugin
from cl_bench.training.metrics_plugin import MultiTaskEvalMetric
from cl_bench.training.schedule import CosineLRPlugin, parameter_groups
from cl_bench.training.template import MultiHeadOutputPlugin, MultiTaskCriterion, MultiTaskTemplate
from scenarios.benchmark import TaskIncrementalBenchmark, build_benchmark
from strategies import StrategyContext, get_strategy

# run settings that do not change results, left out of the run id
_NOT_IN_RUN_ID = {"run": ("out", "logger", "progress", "checkpoints", "device")}


@dataclass
class Stage:
    """One training call: which experience, which tasks it covers, what to evaluate after."""

    experience: Any
    name: str
    evaluate: list[Any]
    reset_model: bool = False


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    summary: dict[str, Any]
    skipped: bool = False


def result_settings(values: dict[str, Any]) -> dict[str, Any]:
    """A resolved config (as a dict) without the keys that do not change results
    (output folder, logging, device)."""
    values = copy.deepcopy(values)
    for section, keys in _NOT_IN_RUN_ID.items():
        for key in keys:
            values.get(section, {}).pop(key, None)
    return values


def run_id_for(config: Config) -> str:
    """``strategy_order_sSEED_hash``: the hash covers every setting that changes results."""
    values = result_settings(to_dict(config))
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{config.strategy.name}_{'-'.join(config.data.order)}_s{config.run.seed}_{digest}"


def _finished_with(run_dir: Path, config_text: str) -> bool:
    """True when ``run_dir`` holds a finished run whose settings (logging and output folder aside) are these."""
    if not ((run_dir / "summary.json").is_file() and (run_dir / "config.yaml").is_file()):
        return False
    try:
        stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    except yaml.YAMLError:
        return False
    return isinstance(stored, dict) and result_settings(stored) == result_settings(yaml.safe_load(config_text))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stages_for(schedule: str, benchmark: TaskIncrementalBenchmark) -> list[Stage]:
    train, test = list(benchmark.train_stream), list(benchmark.test_stream)
    if schedule == "joint":
        everything = concat_datasets([e.dataset for e in train])
        joint = with_task_labels(benchmark_from_datasets(train=[everything])).train_stream[0]
        return [Stage(joint, "+".join(benchmark.tasks), test)]
    if schedule == "single_task":
        return [Stage(e, benchmark.tasks[i], [test[i]], reset_model=True) for i, e in enumerate(train)]
    return [Stage(e, benchmark.tasks[i], test) for i, e in enumerate(train)]


def _loggers(config: Config, run_dir: Path) -> list:
    """log.txt always; then tqdm bars, plain text on stdout, TensorBoard, or nothing more (``none``)."""
    kind = config.run.logger
    loggers = [TextLogger(open(run_dir / "log.txt", "a", buffering=1))]  # line-buffered: follow it live
    if kind == "text" or (kind == "tqdm" and not config.run.progress):
        loggers.append(TextLogger(sys.stdout))
    elif kind in ("tqdm", "tensorboard"):
        loggers.append(InteractiveLogger())
    if kind == "tensorboard":
        loggers.append(TensorboardLogger(run_dir / "tensorboard"))
    return loggers


def run_experiment(config: Config, log: Callable[[str], None] = print) -> RunOutcome:
    """Train and evaluate one strategy; results go to ``config.run.out/<run_id>/``."""
    spec = get_strategy(config.strategy.name)
    options = spec.options(config.strategy.options)
    run_id = run_id_for(config)
    out = Path(config.run.out)
    run_dir = out / run_id
    config_text = yaml.safe_dump(to_dict(config), sort_keys=False)
    if _finished_with(run_dir, config_text):
        log(f"run {run_id} already finished with this config: skipped ({run_dir / 'summary.json'})")
        return RunOutcome(run_id, run_dir, json.loads((run_dir / "summary.json").read_text()), skipped=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", config_text)

    seed_everything(config.run.seed)
    benchmark = build_benchmark(config)
    log(f"data: {benchmark.source.description}")
    tasks = build_tasks(config.tasks)
    device = resolve_device(config.run.device)
    model = build_model(config.model, benchmark.classes, tasks)
    initial_state = copy.deepcopy(model.state_dict())

    def task_of(experience) -> str:
        return "+".join(benchmark.tasks[t] for t in sorted(experience.task_labels))

    criterion = MultiTaskCriterion(tasks, config.train.task_weights)
    output_plugin = MultiHeadOutputPlugin(criterion)
    bn_plugin = BatchNormPolicyPlugin(config.train.bn_policy, task_of)
    lr_plugin = CosineLRPlugin(lambda name: config.train.lr_per_task.get(name, config.train.lr), task_of,
                               config.train.warmup_steps)
    strategy_plugins = spec.plugins(options, StrategyContext(tasks, task_of, config.run.seed))
    plugins = [output_plugin, lr_plugin, bn_plugin, *strategy_plugins]
    metric = MultiTaskEvalMetric(tasks, benchmark.splits["test"], task_of)
    evaluator = EvaluationPlugin(metric, loss_metrics(epoch=True, experience=True),
                                 loggers=_loggers(config, run_dir))
    optimizer = torch.optim.AdamW(parameter_groups(model, config.train.backbone_lr_scale), lr=config.train.lr,
                                  weight_decay=config.train.weight_decay)
    strategy = MultiTaskTemplate(model=model, optimizer=optimizer, criterion=criterion,
                                 train_mb_size=config.train.batch_size, train_epochs=config.train.epochs,
                                 eval_mb_size=config.run.eval_batch_size, device=device, plugins=plugins,
                                 evaluator=evaluator, eval_every=-1)
    stateful = {type(p).__name__: p for p in plugins if hasattr(p, "state_dict")}
    stages = stages_for(spec.schedule, benchmark)
    timings: list[dict[str, Any]] = []
    start = 0
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is not None and checkpoint.get("run_id") == run_id:
        start = checkpoint["completed"] + 1
        model.load_state_dict(checkpoint["model"])
        context = RestoreContext(model, device, [e.dataset for e in benchmark.train_stream])
        for name, plugin in stateful.items():
            plugin.load_state_dict(checkpoint["plugins"][name], context)
        metric.records = list(checkpoint["records"])
        timings = list(checkpoint["timings"])
        strategy.clock.train_exp_counter = start
        set_rng_state(checkpoint["rng"])
        log(f"resuming {run_id} after stage {start}/{len(stages)}")

    loader_args = {"num_workers": config.data.num_workers}
    for index in range(start, len(stages)):
        stage = stages[index]
        if stage.reset_model:
            model.load_state_dict(initial_state)
        epochs = config.train.epochs_per_task.get(stage.name, config.train.epochs)
        strategy.train_epochs = epochs
        log(f"stage {index + 1}/{len(stages)}: {spec.name} trains {stage.name} for {epochs} epochs")
        began = time.perf_counter()
        strategy.train(stage.experience, eval_streams=[], reset_optimizer_state=True, **loader_args)
        trained = time.perf_counter()
        metric.train_exp = index
        strategy.eval(stage.evaluate, **loader_args)
        timings.append({"stage": index, "task": stage.name, "epochs": epochs,
                        "train_s": trained - began, "eval_s": time.perf_counter() - trained})
        if config.run.checkpoints:
            save_checkpoint(run_dir, {
                "run_id": run_id, "completed": index, "model": model.state_dict(),
                "plugins": {name: p.state_dict() for name, p in stateful.items()},
                "records": metric.records, "timings": timings, "rng": rng_state()})

    save_weights(model, run_dir / "model.pt", config.data.image_size, config.tasks,
                 meta={"run_id": run_id, "strategy": spec.name, "order": ",".join(benchmark.tasks)},
                 bn_stats=bn_plugin.per_task or None)
    summary = _write_results(config, spec.schedule, run_id, run_dir, benchmark, metric.records,
                             output_plugin.history, timings, model.parameter_counts()["total"], environment(device))
    (run_dir / CHECKPOINT).unlink(missing_ok=True)  # finished: model.pt and the results remain
    return RunOutcome(run_id, run_dir, summary)


def _write_results(config: Config, schedule: str, run_id: str, run_dir: Path, benchmark, records, losses,
                   timings, params: int, env: dict[str, str]) -> dict[str, Any]:
    order = benchmark.tasks
    frame = pd.DataFrame(records)
    for column, value in (("order", ",".join(order)), ("seed", config.run.seed),
                          ("strategy", config.strategy.name), ("run_id", run_id)):
        frame.insert(0, column, value)
    write_text(run_dir / "losses.csv", pd.DataFrame(losses).to_csv(index=False))
    write_text(run_dir / "timing.csv", pd.DataFrame(timings).to_csv(index=False))
    train_time = float(sum(t["train_s"] for t in timings))
    extra = {"run_id": run_id, "strategy": config.strategy.name, "schedule": schedule, "seed": config.run.seed,
             "order": order, "params": params, "train_time_s": train_time,
             "eval_time_s": float(sum(t["eval_s"] for t in timings)), "timings": timings,
             "data": benchmark.source.description, "image_size": config.data.image_size,
             "classes": benchmark.classes, "environment": env}
    summary = results.write_run_results(run_dir, frame, order, extra, schedule=schedule)
    meta = {"run_id": run_id, "strategy": config.strategy.name, "seed": config.run.seed,
            "order": ",".join(order), "backbone": config.model.backbone, "bn_policy": config.train.bn_policy,
            "image_size": config.data.image_size, "epochs": config.train.epochs, "train_time_s": train_time,
            "params": params}
    results.upsert_run(Path(config.run.out) / "runs.csv", results.runs_row(summary, meta))
    return summary

