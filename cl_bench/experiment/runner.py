"""One benchmark run: config -> scenario -> model -> strategy -> evaluation ->
results, resumable after each stage.

``run_experiment`` goes in four steps: assemble the pieces, resume from the
checkpoint of the last completed stage, train the remaining stages (each
followed by evaluation and a checkpoint), finish (weights and result files).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from avalanche.evaluation.metrics import loss_metrics
from avalanche.logging import InteractiveLogger, TensorboardLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin

from cl_bench import results
from cl_bench.atomic import check_writable, remove_stale_temporaries, write_text
from cl_bench.config import Config
from cl_bench.dataclass_io import to_dict
from cl_bench.devices import code_version, environment, machine, resolve_device
from cl_bench.digest import sha256_file
from cl_bench.evaluation import MultiTaskEvalMetric
from cl_bench.experiment.checkpoints import (
    CHECKPOINT,
    RestoreContext,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cl_bench.experiment.run_id import check_backbone, finished_with, run_id_for
from cl_bench.experiment.run_intervals import run_intervals
from cl_bench.experiment.run_lock import run_lock
from cl_bench.experiment.run_record import RunRecord, add_runs_row
from cl_bench.model import UnifiedModel, build_model
from cl_bench.model.backbones import weights_file
from cl_bench.model.weights_file import save_weights
from cl_bench.schedules import Stage
from cl_bench.tasks import build_tasks
from cl_bench.training.batchnorm_policy import BatchNormPolicyPlugin
from cl_bench.training.criterion import MultiTaskCriterion
from cl_bench.training.finite_loss import FiniteLossPlugin
from cl_bench.training.loss_log import LossLogPlugin
from cl_bench.training.lr_schedule import CosineLRPlugin, parameter_groups
from cl_bench.training.part_rates import PartRatesPlugin
from cl_bench.training.template import MultiTaskTemplate
from scenarios.benchmark import TaskIncrementalBenchmark, build_benchmark
from scenarios.check import validate_data
from strategies import StrategyContext, StrategySpec, get_strategy

# The code this process imported, read once: a process that runs several runs (a Ray worker of a grid)
# keeps its modules while the checkout moves on, so the checkout's state at a later run's start is not it.
IMPORTED_CODE = code_version()


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    summary: dict[str, Any]
    skipped: bool = False


@dataclass
class Run:
    """The assembled pieces of one run and its progress."""

    config: Config
    spec: StrategySpec
    run_id: str
    run_dir: Path
    benchmark: TaskIncrementalBenchmark
    model: UnifiedModel
    initial_state: dict[str, torch.Tensor]
    strategy: MultiTaskTemplate
    stages: list[Stage]
    loss_log: LossLogPlugin
    bn_policy: BatchNormPolicyPlugin
    metric: MultiTaskEvalMetric
    stateful: dict[str, Any]  # plugins (and the metric) whose state a checkpoint keeps
    timings: list[dict[str, Any]] = field(default_factory=list)
    start: int = 0  # first stage still to train
    code: list[str] = field(default_factory=list)  # cl_bench versions that trained the stages, in order
    options: dict[str, Any] = field(default_factory=dict)  # the strategy's, resolved: {part: its options}


def _code_versions(earlier: list[str], now: str) -> list[str]:
    return earlier if earlier[-1:] == [now] else [*earlier, now]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _loggers(config: Config, run_dir: Path) -> list:
    """log.txt always; then tqdm bars (plain text when stdout is not a terminal), plain text on
    stdout, TensorBoard, or nothing more (``none``)."""
    kind = config.run.logger
    # open for the run's lifetime, line-buffered: the log can be followed live
    loggers = [TextLogger(open(run_dir / "log.txt", "a", buffering=1))]  # noqa: SIM115
    bars = config.run.progress and sys.stdout.isatty()  # no carriage-return frames in a log or pipe
    if kind == "text" or (kind == "tqdm" and not bars):
        loggers.append(TextLogger(sys.stdout))
    elif kind in ("tqdm", "tensorboard"):
        loggers.append(InteractiveLogger())
    if kind == "tensorboard":
        loggers.append(TensorboardLogger(run_dir / "tensorboard"))
    return loggers


def assemble(config: Config, spec: StrategySpec, options: dict[str, Any], run_id: str, run_dir: Path,
             log: Callable[[str], None]) -> Run:
    """Scenario, model, plugins and the Avalanche template of a run, from its config."""
    seed_everything(config.run.seed)
    validate_data(config.data, config.tasks, log)
    benchmark = build_benchmark(config)
    log(f"data: {benchmark.source.description}; evaluated on {benchmark.evaluated_on}")
    tasks = build_tasks(config.tasks)
    device = resolve_device(config.run.device)
    model = build_model(config.model, benchmark.classes, tasks)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    initial_state = copy.deepcopy(model.state_dict())

    criterion = MultiTaskCriterion(tasks, config.train.task_weights)
    loss_log = LossLogPlugin(criterion)
    bn_policy = BatchNormPolicyPlugin(config.train.bn_policy)
    lr_plugin = CosineLRPlugin(lambda name: config.train.lr_per_task.get(name, config.train.lr),
                               config.train.warmup_steps)
    strategy_plugins = spec.build(options, StrategyContext(tasks, config.run.seed))
    part_rates = PartRatesPlugin(config.train.part_lr_per_task)
    plugins = [loss_log, lr_plugin, part_rates, bn_policy, *strategy_plugins, FiniteLossPlugin(criterion)]
    metric = MultiTaskEvalMetric(tasks, benchmark.splits["test"])
    evaluator = EvaluationPlugin(metric, loss_metrics(epoch=True, experience=True),
                                 loggers=_loggers(config, run_dir))
    optimizer = torch.optim.AdamW(parameter_groups(model, config.train.backbone_lr_scale), lr=config.train.lr,
                                  weight_decay=config.train.weight_decay)
    strategy = MultiTaskTemplate(model=model, optimizer=optimizer, criterion=criterion,
                                 train_mb_size=config.train.batch_size, train_epochs=config.train.epochs,
                                 eval_mb_size=config.run.eval_batch_size, device=device, plugins=plugins,
                                 evaluator=evaluator, eval_every=-1, precision=config.train.precision,
                                 channels_last=config.train.channels_last)
    stateful = {type(p).__name__: p for p in [*plugins, metric] if hasattr(p, "state_dict")}
    stages = spec.schedule.stages(list(benchmark.train_stream), list(benchmark.test_stream), benchmark.tasks)
    return Run(config, spec, run_id, run_dir, benchmark, model, initial_state, strategy, stages, loss_log,
               bn_policy, metric, stateful, options=options)


def resume(run: Run, log: Callable[[str], None]) -> None:
    """Restore the state after the last completed stage, when the run folder has its checkpoint."""
    checkpoint = load_checkpoint(run.run_dir)
    if checkpoint is None or checkpoint.get("run_id") != run.run_id:
        return
    run.start = checkpoint["completed"] + 1
    run.model.load_state_dict(checkpoint["model"])
    context = RestoreContext(run.model, run.strategy.device, [e.dataset for e in run.benchmark.train_stream])
    for name, plugin in run.stateful.items():
        plugin.load_state_dict(checkpoint["plugins"][name], context)
    run.timings = list(checkpoint["timings"])
    run.code = list(checkpoint.get("code", []))
    # Avalanche keeps no state of its own that a checkpoint could restore but its clock,
    # which EWC reads to key the importances of each experience.
    run.strategy.clock.train_exp_counter = run.start
    set_rng_state(checkpoint["rng"])
    log(f"resuming {run.run_id} after stage {run.start}/{len(run.stages)}")


def loader_arguments(config: Config, device: torch.device) -> dict[str, Any]:
    """DataLoader settings: workers kept alive across epochs (they keep their image
    cache), pinned memory when training on CUDA."""
    workers = config.data.num_workers
    return {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": device.type == "cuda"}


def train_stages(run: Run, log: Callable[[str], None]) -> None:
    """Train and evaluate every stage not yet completed, checkpointing after each."""
    config, loader_args = run.config, loader_arguments(run.config, run.strategy.device)
    run.code = _code_versions(run.code, IMPORTED_CODE)
    for index in range(run.start, len(run.stages)):
        stage = run.stages[index]
        if stage.reset_model:
            run.model.load_state_dict(run.initial_state)
            for plugin in run.strategy.plugins:  # those that treat a first experience apart
                if hasattr(plugin, "restart"):
                    plugin.restart()
        epochs = stage.epochs(lambda task: config.train.epochs_per_task.get(task, config.train.epochs))
        run.strategy.train_epochs = epochs
        log(f"stage {index + 1}/{len(run.stages)}: {run.spec.name} trains {stage.name} for {epochs} epochs")
        began = time.perf_counter()
        run.strategy.train(stage.experience, eval_streams=[], reset_optimizer_state=True, **loader_args)
        trained = time.perf_counter()
        run.strategy.eval(stage.evaluate, **loader_args)
        run.timings.append({"stage": index, "task": stage.name, "epochs": epochs,
                            "train_s": trained - began, "eval_s": time.perf_counter() - trained,
                            "machine": machine(run.strategy.device)})
        if config.run.checkpoints:
            save_checkpoint(run.run_dir, {
                "run_id": run.run_id, "completed": index, "model": run.model.state_dict(),
                "plugins": {name: p.state_dict() for name, p in run.stateful.items()},
                "timings": run.timings, "rng": rng_state(), "code": run.code})


def finish(run: Run) -> dict[str, Any]:
    """Write the weights and the result files; the checkpoint goes once they are complete."""
    config, benchmark = run.config, run.benchmark
    save_weights(run.model, run.run_dir / "model.pt", config.data.image_size, config.tasks,
                 meta={"run_id": run.run_id, "strategy": run.spec.name, "order": ",".join(benchmark.tasks)},
                 bn_stats=run.bn_policy.per_task or None)
    intervals = {} if not config.run.bootstrap_resamples else run_intervals(
        run.metric, run.metric.tasks, benchmark.splits["test"], run.spec.schedule, benchmark.tasks,
        resamples=config.run.bootstrap_resamples, confidence=config.run.confidence, seed=config.run.seed,
        threshold_pct=results.DEFAULT_THRESHOLD_PCT)
    record = RunRecord(config, run.run_id, run.spec.schedule, benchmark.tasks, benchmark.classes,
                       benchmark.source.description, benchmark.evaluated_on, run.metric.records,
                       run.loss_log.history, run.timings, run.model.parameter_counts()["total"],
                       {**environment(run.strategy.device), "cl_bench": " then ".join(run.code) or IMPORTED_CODE,
                        **backbone_provenance(config)}, intervals, recorded_options(run.spec, run.options))
    summary = record.write(run.run_dir)
    (run.run_dir / CHECKPOINT).unlink(missing_ok=True)
    return summary


def backbone_provenance(config: Config) -> dict[str, str]:
    """The local backbone weights file a run started from and its sha256 (empty for none / imagenet)."""
    if config.model.backbone_weights in ("none", "imagenet", ""):
        return {}
    path = weights_file(config.model.backbone, config.model.backbone_weights)
    return {"backbone_weights_file": str(path.resolve()), "backbone_weights_sha256": sha256_file(path)}


def run_experiment(config: Config, log: Callable[[str], None] = print) -> RunOutcome:
    """Train and evaluate one strategy; results go to ``config.run.out/<run_id>/``.
    A run already finished with the same settings is skipped; a run another process
    holds is refused (``run_lock``)."""
    check_backbone(config)  # the one named setting the config cannot check: before any folder or data
    spec = get_strategy(config.strategy.name)
    # the options, resolved once (bad ones stop here, before any work): typed per part, and the config
    # recording those away from their defaults, in the form the run id hashes (StrategySpec.canonical)
    options = spec.resolve(config.strategy.options)
    config = dataclasses.replace(config, strategy=dataclasses.replace(
        config.strategy, options=spec.canonical(config.strategy.options)))
    run_id = run_id_for(config)
    run_dir = check_writable(Path(config.run.out) / run_id)
    with run_lock(run_dir):
        for stale in remove_stale_temporaries(run_dir):
            log(f"removed {stale}, left by a run stopped while writing")
        return _run_locked(config, spec, options, run_id, run_dir, log)


def recorded_options(spec: StrategySpec, options: dict[str, Any]) -> dict[str, Any]:
    """``resolve``'s options as summary.json records them (``run_id.resolved_options``' layout)."""
    return json.loads(json.dumps(to_dict(spec.options_type(**options) if spec.parts else options[spec.name])))


def _run_locked(config: Config, spec: StrategySpec, options: dict[str, Any], run_id: str, run_dir: Path,
                log: Callable[[str], None]) -> RunOutcome:
    config_text = yaml.safe_dump(to_dict(config), sort_keys=False)
    if finished_with(run_dir, config_text, recorded_options(spec, options)):
        summary = json.loads((run_dir / "summary.json").read_text())
        if not results.has_run(Path(config.run.out) / "runs.csv", run_id):
            add_runs_row(config, summary)
            (run_dir / CHECKPOINT).unlink(missing_ok=True)
            log(f"run {run_id}: its runs.csv row was missing (stopped while writing results): added from "
                f"{run_dir / 'summary.json'}")
        log(f"run {run_id} already finished with this config: skipped ({run_dir / 'summary.json'})")
        return RunOutcome(run_id, run_dir, summary, skipped=True)
    provenance = "".join(f"# {key}: {value}\n" for key, value in backbone_provenance(config).items())
    write_text(run_dir / "config.yaml", config_text + provenance)

    run = assemble(config, spec, options, run_id, run_dir, log)
    resume(run, log)
    train_stages(run, log)
    return RunOutcome(run_id, run_dir, finish(run))
