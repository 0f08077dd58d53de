"""`run_bench.py [--strategy NAME] ...` (or `cl-bench ...`): one benchmark run."""

from __future__ import annotations

import argparse

from cl_bench.cli.arguments import add_data_arguments, add_model_arguments, check_backbone, config_from_args
from cl_bench.config import Config, RunConfig, TrainConfig, apply_set
from cl_bench.dataclass_io import choices_of
from cl_bench.rules import OWN_BASE, SINGLE_TASK_RULE, rule_definition
from cl_bench.schedules import get_schedule


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Config()
    group = parser.add_argument_group("training")
    group.add_argument("--strategy", help="continual-learning strategy (see --list-strategies; default naive)")
    group.add_argument("--list-strategies", action="store_true", help="list the strategies and their options")
    group.add_argument("--seed", type=int, help="random seed (default 0)")
    group.add_argument("--order", metavar="A,B,C", help="task order, a permutation of seg,det,cls (default)")
    group.add_argument("--epochs", type=int, help=f"epochs per experience (default {defaults.train.epochs})")
    group.add_argument("--lr", type=float,
                       help=f"learning rate (AdamW, cosine decay per experience; default {defaults.train.lr:g})")
    group.add_argument("--batch-size", type=int,
                       help=f"training minibatch size (default {defaults.train.batch_size}; replay adds its own)")
    group.add_argument("--bn-policy", choices=choices_of(TrainConfig, "bn_policy"),
                       help="BatchNorm running statistics: keep training them, freeze them after the first "
                            "experience, or keep one set per task (default train)")
    group.add_argument("--workers", type=int, help="data loading worker processes (default 0: in the main process)")
    group.add_argument("--out", help="results folder (default results/)")
    group.add_argument("--logger", choices=choices_of(RunConfig, "logger"),
                       help="progress output: tqdm bars, plain text, tqdm + TensorBoard in the run folder, or "
                            "none (the run folder's log.txt only)")
    group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config value, e.g. --set strategy.options.ewc_lambda=1e4 "
                            "--set train.epochs_per_task.det=40 (repeatable; VALUE is YAML)")


def train_config(args: argparse.Namespace) -> Config:
    config = config_from_args(args)
    for flag, section, key in (("strategy", config.strategy, "name"), ("seed", config.run, "seed"),
                               ("epochs", config.train, "epochs"), ("lr", config.train, "lr"),
                               ("batch_size", config.train, "batch_size"), ("bn_policy", config.train, "bn_policy"),
                               ("workers", config.data, "num_workers"), ("out", config.run, "out"),
                               ("logger", config.run, "logger"), ("device", config.run, "device")):
        value = getattr(args, flag, None)
        if value is not None and not (flag == "device" and value == "auto"):
            setattr(section, key, value)
    if args.order:
        config.data.order = [name.strip() for name in args.order.split(",")]
    return check_backbone(apply_set(config, args.set), "config")  # named as apply_set names its keys


def list_strategies() -> str:
    from strategies import STRATEGIES

    lines = ["strategies and their options (name = default (type, allowed values): help), set under "
             "strategy.options.<strategy>.<name> in YAML or with --set (alone, strategy.options.<name> works too):"]
    for name, spec in sorted(STRATEGIES.items()):
        lines.append(f"  {name:<12} {spec.summary}")
        lines.extend(f"  {'':<12}   {line}" for line in spec.describe_options())
    buffers = ", ".join(name for name, spec in sorted(STRATEGIES.items()) if spec.buffer and spec.composable)
    lines.append(f"compose with '+', e.g. --strategy ewc+replay+lwf: the parts' plugins in the order written, options "
                 f"per part (--set strategy.options.ewc.ewc_lambda=1e4); at most one of {buffers} (each keeps a "
                 f"buffer); naive, joint, single_task and ewc_replay (= ewc+replay) run alone")
    return "\n".join(lines)


def train_command(args: argparse.Namespace) -> int:
    if args.list_strategies:
        print(list_strategies())
        return 0
    from strategies import get_strategy

    config = train_config(args)
    get_strategy(config.strategy.name)  # unknown name -> the list of known ones, before any work
    from cl_bench.experiment.runner import run_experiment

    outcome = run_experiment(config)
    print(f"\nrun {outcome.run_id}: results in {outcome.run_dir}")
    print(summary_table(outcome.summary))
    return 0


def summary_table(summary: dict) -> str:
    """Base, final, drops and pass per task, then the overall verdict."""
    import pandas as pd

    rows = [{"task": task, "metric": summary["metrics"][task], "base": v["base"], "final": v["final"],
             "drop %": v["drop_rel_pct"], "drop pts": v["drop_abs_pts"],
             "pass (own_base)": "yes" if v["pass_rel"] else "no"}
            for task, v in summary["tasks"].items()]
    table = pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}")
    schedule = get_schedule(summary.get("schedule", "sequential"))
    if schedule.reference:
        return table + f"\n({schedule.name} is a reference: base = final by construction)"
    bwt = ", ".join(f"{name} {summary[key]:.4f}" for name, key in (("BWT (rel.)", "bwt_rel"), ("BWT (raw)", "bwt"))
                    if summary.get(key) is not None) or "BWT n/a"
    lines = [table, f"own_base rule: {'PASS' if summary['pass'] else 'FAIL'} "
                    f"({rule_definition(OWN_BASE, summary['threshold_pct'])}); {bwt}"]
    single = (summary.get("rules") or {}).get(SINGLE_TASK_RULE) or {}
    if single.get("tasks"):
        detail = ", ".join(f"{task} {v['final']:.4f} vs {v['reference']:.4f} ({v['drop_rel_pct']:.1f} %)"
                           if v["final"] is not None else f"{task} missing" for task, v in single["tasks"].items())
        lines.append(f"single_task rule: {'PASS' if single['pass'] else 'FAIL'} ({detail}; reference: "
                     f"{len(single['reference_runs'])} single_task run(s) of the same setting)")
    else:
        lines.append("single_task rule: no reference (no finished single_task run of the same setting in the "
                     "results folder; run --strategy single_task with this config for one)")
    return "\n".join(lines)


def build_train_parser(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser)
    add_model_arguments(parser)
    add_data_arguments(parser)
    parser.set_defaults(handler=train_command)
