"""Command-line plumbing the commands share: data and model options, config overrides, error exits."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import Callable

from cl_bench.config import Config, DataConfig, ModelConfig, load_config
from cl_bench.dataclass_io import choices_of
from cl_bench.errors import CLBenchError, one_line
from cl_bench.experiment.run_id import check_backbone
from cl_bench.tasks import TASKS


def quiet_third_party_warnings() -> None:
    """Silence import-time noise of Avalanche's optional dependencies."""
    warnings.filterwarnings("ignore", message="no QP solver found", module="qpsolvers")


def add_task_root_arguments(group) -> None:
    """``--seg-root``, ``--det-root``, ``--cls-root``: one task's folder, overriding the data root."""
    for task in TASKS.values():
        group.add_argument(f"--{task.name}-root", dest=f"{task.name}_root", metavar="DIR",
                           help=f"{task.title} folder ({task.dataset}), overriding the data root for this task")


def task_roots(args: argparse.Namespace) -> dict[str, str]:
    """The per-task folders given on the command line."""
    return {name: getattr(args, f"{name}_root") for name in TASKS if getattr(args, f"{name}_root", None)}


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data-root", "--data_root", "--dataroot", dest="data_root", metavar="DIR",
                       help="folder holding the three task folders (mini_voc_seg, mini_coco_det, "
                            "imagenette_160 or their variants); default ./data, else the synthetic default")
    add_task_root_arguments(group)
    group.add_argument("--synthetic", action="store_true",
                       help="use the embedded synthetic default even when ./data exists")
    for task in TASKS.values():
        group.add_argument(f"--{task.name}-classes", dest=f"{task.name}_classes", metavar="A,B,...",
                           help=f"{task.title} class names (default: read from the training split)")
    group.add_argument("--train-split", metavar="NAME", help="training split folder (default train)")
    group.add_argument("--test-split", metavar="NAME", help="evaluation split folder (default val)")


def apply_data_arguments(data: DataConfig, args: argparse.Namespace) -> DataConfig:
    """Override ``data`` with the command-line values that were given. A data folder given on the
    command line (``--data-root``, ``--seg-root`` ...) overrides a config's ``data.synthetic: true``, as
    every flag overrides the config; ``--synthetic`` with one of them is a contradiction, an error."""
    given = task_roots(args)
    if args.synthetic and (args.data_root or given):
        flags = ([f"--data-root {args.data_root}"] if args.data_root else []) + [
            f"--{name}-root {path}" for name, path in given.items()]
        raise CLBenchError(f"--synthetic and {', '.join(flags)} contradict each other: give one of them")
    if args.data_root:
        data.root = args.data_root
    data.roots.update(given)
    if args.data_root or given:
        data.synthetic = False  # the folder named on the command line wins over the config's data.synthetic
    if args.synthetic:
        data.synthetic = True
    for name in TASKS:
        given = getattr(args, f"{name}_classes", None)
        if given:
            data.classes[name] = [c.strip() for c in given.split(",") if c.strip()]
    if args.train_split:
        data.train_split = args.train_split
    if args.test_split:
        data.test_split = args.test_split
    return data


def backbone_names() -> list[str]:
    """The names model.backbone allows: the model's backbone registry."""
    from cl_bench.model.backbones import BACKBONES

    return sorted(BACKBONES)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--config", metavar="YAML", help="experiment config (see experiments/); flags override it")
    group.add_argument("--backbone", choices=backbone_names(),
                       help=f"backbone (default {ModelConfig().backbone})")
    group.add_argument("--backbone-weights", metavar="none|imagenet|FILE",
                       help="backbone initialisation: none (random), imagenet (torchvision download), or a local "
                            "state_dict file / folder of such files (e.g. $CL_BENCH_WEIGHTS)")
    group.add_argument("--neck", choices=choices_of(ModelConfig, "neck"),
                       help="fpn (one FPN layer) or convbnrelu (<= 2 layers)")
    group.add_argument("--image-size", type=int, metavar="PX", help="square input size for every task")
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The YAML config (or defaults) with the command-line overrides applied."""
    config = load_config(getattr(args, "config", None))
    if hasattr(args, "data_root"):
        apply_data_arguments(config.data, args)
    for flag, section, key in (("backbone", config.model, "backbone"),
                               ("backbone_weights", config.model, "backbone_weights"),
                               ("neck", config.model, "neck"), ("image_size", config.data, "image_size")):
        value = getattr(args, flag, None)
        if value is not None:
            setattr(section, key, value)
    return check_backbone(config, getattr(args, "config", None) or "config")


def run_command(command: Callable[[], int]) -> int:
    """Run a command; user errors become one line on stderr and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_third_party_warnings()
    try:
        return command()
    except CLBenchError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: completed work is saved; run the same command again to resume", file=sys.stderr)
        return 130
