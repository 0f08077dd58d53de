"""Evaluate an exported cl_bench model (the grader's command).

    python eval.py --weights best_model.pt --data_root data --tasks all

Prints detection mAP (and mAP@0.5), segmentation mIoU (and pixel accuracy)
and classification Top-1 (and Top-5) on one split of the data. The weights
file carries the model description, class lists and preprocessing, so nothing
else is needed (an own model, model.factory: its module must be importable, e.g.
on PYTHONPATH; docs/own-model.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cl_bench.cli.arguments import add_task_root_arguments, run_command, task_roots
from cl_bench.errors import CLBenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eval.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, type=Path, help="weights file written by `run_bench.py export`")
    parser.add_argument("--data_root", "--data-root", "--dataroot", dest="data_root", default="data",
                        help="folder holding mini_coco_det, mini_voc_seg, imagenette_160 (default: data)")
    add_task_root_arguments(parser)
    parser.add_argument("--tasks", default="all",
                        help="all, or a comma list of det|seg|cls (or detection, segmentation, classification)")
    parser.add_argument("--split", default="val", help="split folder to evaluate (default: val; e.g. test)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="evaluation batch size (default 16)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the metrics as JSON to FILE")
    parser.add_argument("--allow-class-mismatch", action="store_true",
                        help="evaluate a task whose data declares other class names than the model (by name) on "
                             "the classes both have, instead of stopping with an error")
    return parser


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (argparse prints the usage and one error line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """`python eval.py` (the graders' command)."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: evaluate(args))


def check_classes(task, model_classes: list[str], task_root: Path, split: str, allow_mismatch: bool) -> list[str]:
    """Compare the model's class names with those the split declares, by name, and return the
    split's classes the evaluation ignores. A task whose classes are a selection of the data's
    (``Task.selects_classes``: detection) accepts classes beyond the model's: their annotations
    are ignored, as in training. Any other difference (for such a task: a class of the model that
    the split lacks) is an error, or (``allow_mismatch``) a warning: the metric then covers the
    classes both have."""
    declared = task.split_classes(task_root, split)
    missing = [name for name in model_classes if name not in declared]
    extra = [name for name in declared if name not in model_classes]
    if missing or (extra and not task.selects_classes):
        detail = (f"{task.title} classes of {task.classes_file(task_root, split)} differ from the model's: missing "
                  f"{name_list(missing)}; extra {name_list(extra)}")
        if not allow_mismatch:
            raise CLBenchError(f"{detail} (--allow-class-mismatch evaluates the classes both have)")
        both = len(model_classes) - len(missing)
        print(f"warning: {detail}; evaluating the {both} classes both have (--allow-class-mismatch)")
    return extra if task.selects_classes else []


def name_list(names: list[str], limit: int = 12) -> str:
    """``a, b, c``, the first ``limit`` names and how many more, or ``none``."""
    if len(names) > limit:
        return f"{', '.join(names[:limit])} and {len(names) - limit} more"
    return ", ".join(names) or "none"


def ignored_classes_line(task, ignored: list[str], model_classes: list[str], where: Path,
                         annotations: int | None) -> str:
    """The info line on the split's classes beyond the model's (a selecting task ignores them)."""
    one = len(ignored) == 1
    categories = f"{len(ignored)} categor{'y' if one else 'ies'} of {where} {'is' if one else 'are'}"
    if annotations is None:
        what = f"{'it is' if one else 'they are'} ignored"
    else:
        what = (f"{'its' if one else 'their'} {annotations} annotation{'' if annotations == 1 else 's'} "
                f"{'is' if annotations == 1 else 'are'} ignored")
    return (f"info: {task.title}: {categories} not among the model's {len(model_classes)} classes; "
            f"{what}, as in training")


def evaluate(args: argparse.Namespace) -> int:
    from cl_bench.atomic import write_text
    from cl_bench.config import DataConfig
    from cl_bench.devices import resolve_device
    from cl_bench.evaluation import evaluate_task
    from cl_bench.model.weights_file import load_weights
    from cl_bench.tasks import build_tasks, get_task, metric_label
    from scenarios.benchmark import eval_dataset
    from scenarios.layout import resolve_data

    device = resolve_device(args.device)
    loaded = load_weights(args.weights, device)
    tasks = build_tasks(loaded.tasks)
    names = list(loaded.model.classes) if args.tasks == "all" else []
    for item in (t for t in args.tasks.split(",") if args.tasks != "all"):
        try:
            names.append(get_task(item.strip()).name)
        except ValueError as error:
            raise CLBenchError(f"--tasks: {error}") from None
    data = DataConfig(root=args.data_root, test_split=args.split, roots=task_roots(args))
    source = resolve_data(data, names)
    counts = loaded.model.parameter_counts()
    model = loaded.model.config
    name = f"factory {model.factory}" if model.factory else model.backbone
    print(f"weights: {args.weights} ({name}, {counts['total'] / 1e6:.2f} M parameters, "
          f"{loaded.image_size} px, device {device})")
    results = {}
    for label, name in enumerate(names):
        task = tasks[name]
        classes = loaded.model.classes[name]
        ignored = check_classes(task, classes, source.roots[name], args.split, args.allow_class_mismatch)
        split = task.open_split(source.roots[name], args.split, classes)
        if ignored:
            print(ignored_classes_line(task, ignored, classes, task.classes_file(source.roots[name], args.split),
                                       task.ignored_annotations(split)))
        dataset = eval_dataset(split, label, loaded.image_size)
        metrics = evaluate_task(loaded.prepare_for(name), task, dataset, split, device, args.batch_size)
        results[name] = metrics
        primary, *others = task.metrics
        extra = ", ".join(f"{metric_label(m)} {metrics[m]:.4f}" for m in others)
        print(f"{task.title:<15} {metric_label(primary):>6} {metrics[primary]:.4f}   ({extra}; "
              f"{len(split)} images of {source.roots[name] / args.split})")
    if args.json:
        write_text(args.json, json.dumps({"weights": str(args.weights), "split": args.split, "metrics": results},
                                         indent=2))
    return 0


