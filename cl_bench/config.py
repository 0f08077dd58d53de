"""Typed configuration: dataclasses, loaded from YAML and overridden from the CLI.
The ``tasks`` section has one entry per registered task, typed by its Task."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cl_bench.dataclass_io import AT_LEAST_0, AT_LEAST_1, POSITIVE, PROBABILITY, Range, from_dict, setting, to_dict
from cl_bench.errors import CLBenchError, first_line
from cl_bench.tasks import default_order, task_key, task_options, task_order
from cl_bench.yaml_io import load_yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 32  # the backbones' deepest stride (the FPN neck reads the stride-32 stage): input sizes are multiples

# The names the named settings allow, checked when a config is loaded (``setting(choices=...)``); the command
# line's choice lists and the code that acts on each name read them from here. The backbones are the model's
# registry (cl_bench/model/backbones.py), which this layer cannot import: every path to a run checks
# model.backbone (cl_bench.experiment.run_id.check_backbone).
NECKS = ("fpn", "convbnrelu")  # one FPN layer | 1 or 2 ConvBNReLU layers (model.neck_layers)
BN_POLICIES = ("train", "freeze_after_first", "per_task")  # cl_bench/training/batchnorm_policy.py
PRECISIONS = ("fp32", "bf16", "fp16")  # autocast of the forward pass (cl_bench/training/precision.py)
LOGGERS = ("tqdm", "text", "tensorboard", "none")  # progress output: bars, plain text, bars + TensorBoard, log.txt only


@dataclass
class DataConfig:
    """Where the data is and how it is fed.

    ``root`` holds the three task folders; ``roots`` overrides single tasks
    (``{"seg": path}``; per-task keys take a task's short or long name, ``det`` or
    ``detection``, and are stored as the short one). With neither, ``./data`` is used when it exists, else
    the synthetic default is written and used.
    """

    root: str | None = None
    roots: dict[str, str] = setting(default_factory=dict, keys=task_key)
    synthetic: bool = False
    synthetic_seed: int = setting(0, allowed=AT_LEAST_0)
    synthetic_size: int = setting(96, allowed=Range(32))  # pixel size of the written synthetic images
    synthetic_train: int = setting(40, allowed=Range(4))  # synthetic images per task in train (val: a quarter)
    order: list[str] = field(default_factory=default_order)
    train_split: str = "train"
    test_split: str = "val"
    # > 0: hold this many training images per task out for tuning and evaluate on them
    tune_split: int = setting(0, allowed=AT_LEAST_0)
    # which images are held out (the same for every run and strategy)
    tune_split_seed: int = setting(0, allowed=AT_LEAST_0)
    # the challenge uses 512 (experiments/challenge.yaml)
    image_size: int = setting(64, allowed=Range(STRIDE, multiple_of=STRIDE))
    augment: bool = True
    # per task: its class names (default: from data)
    classes: dict[str, list[str]] = setting(default_factory=dict, keys=task_key)
    num_workers: int = setting(0, allowed=AT_LEAST_0)  # DataLoader worker processes (persistent across epochs when > 0)
    cache_images: bool = True  # keep decoded images and targets in memory: no decoding after the first epoch

    def __post_init__(self) -> None:
        try:  # a permutation of the tasks' short or long names (kept as written: run ids name the order)
            task_order(self.order)
        except CLBenchError as error:
            raise CLBenchError(f"data.{error}") from None


_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")  # a dotted Python name (model.factory's halves)


@dataclass
class ModelConfig:
    """Backbone + neck + one head (challenge: < 8 M parameters, head of 2-3 layers).

    ``backbone_weights``: ``none`` (random), ``imagenet`` (torchvision's
    download), or a local state_dict file / a folder holding ``<backbone>*.pth``.
    """

    backbone: str = "mobilenet_v3_small"
    backbone_weights: str = "none"
    neck: str = setting("fpn", choices=NECKS)  # fpn (one FPN layer) | convbnrelu
    neck_layers: int = setting(2, allowed=Range(1, 2))  # convbnrelu only: 1 or 2
    neck_channels: int = setting(128, allowed=AT_LEAST_1)
    head_layers: int = setting(3, allowed=Range(2, 3))  # 2 or 3
    head_channels: int = setting(128, allowed=AT_LEAST_1)
    bn_momentum: float = setting(0.1, allowed=PROBABILITY)  # torchvision's MobileNets use 0.01: too slow for short runs
    # your own model instead of the built-in one (docs/own-model.md): "package.module:function", called
    # with the head layout and factory_options as keyword arguments; the settings above are then unused
    factory: str = ""
    factory_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        module, _, function = self.factory.partition(":")
        if self.factory and not (_DOTTED.fullmatch(module) and _DOTTED.fullmatch(function)):
            raise CLBenchError(f"model.factory: '{self.factory}' is not 'package.module:function'")
        if self.factory_options and not self.factory:
            raise CLBenchError("model.factory_options: set without model.factory")


@dataclass
class PartRates:
    """Learning-rate scales of the model's parts while one task trains (unset: the part's default,
    ``backbone_lr_scale`` for the backbone, 1 for the others); 0 freezes the part for that stage: no
    gradient (no backward pass through it when nothing before it learns), no weight decay, its BatchNorm
    statistics fixed."""

    backbone: float | None = setting(None, allowed=AT_LEAST_0)
    neck: float | None = setting(None, allowed=AT_LEAST_0)
    head: float | None = setting(None, allowed=AT_LEAST_0)


@dataclass
class TrainConfig:
    """Optimisation of each experience (AdamW, cosine decay per experience).

    ``epochs`` / ``lr`` apply to every experience unless ``epochs_per_task`` /
    ``lr_per_task`` name the task (``{"det": 30}``, or ``{"detection": 30}``); the joint stage trains
    the mean of its tasks' epochs. ``task_weights`` scale each task's loss in mixed (replay, joint)
    minibatches. ``part_lr_per_task`` scales the rate of a part while a task trains
    (``{"det": {"backbone": 0}}`` freezes the backbone in the detection stage; see ``PartRates``).
    """

    epochs: int = setting(30, allowed=AT_LEAST_1)
    epochs_per_task: dict[str, int] = setting(default_factory=dict, keys=task_key, allowed=AT_LEAST_1)
    lr: float = setting(3e-3, allowed=POSITIVE)
    lr_per_task: dict[str, float] = setting(default_factory=dict, keys=task_key, allowed=POSITIVE)
    # backbone rate / neck and head rate; ~0.1 suits an ImageNet backbone
    backbone_lr_scale: float = setting(1.0, allowed=AT_LEAST_0)
    part_lr_per_task: dict[str, PartRates] = setting(default_factory=dict, keys=task_key)
    weight_decay: float = setting(1e-4, allowed=AT_LEAST_0)
    batch_size: int = setting(8, allowed=AT_LEAST_1)
    warmup_steps: int = setting(0, allowed=AT_LEAST_0)
    bn_policy: str = setting("train", choices=BN_POLICIES)
    task_weights: dict[str, float] = setting(default_factory=dict, keys=task_key, allowed=AT_LEAST_0)
    precision: str = setting("fp32", choices=PRECISIONS)  # autocast of the forward pass (bench/train_speed.py)
    channels_last: bool = True  # channels_last memory format for the model and its inputs (bench/train_speed.py)


@dataclass
class StrategyConfig:
    """Which continual-learning strategy, and its options (see ``strategies/``)."""

    name: str = "naive"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    seed: int = setting(0, allowed=AT_LEAST_0)
    out: str = "results"
    device: str = "auto"
    eval_batch_size: int = setting(16, allowed=AT_LEAST_1)
    checkpoints: bool = True  # keep each experience's state for resuming
    logger: str = setting("tqdm", choices=LOGGERS)  # tqdm | text | tensorboard | none (log.txt only)
    progress: bool = True
    # bootstrap resamples of the val images for every interval (0: none)
    bootstrap_resamples: int = setting(200, allowed=AT_LEAST_0)
    confidence: float = setting(0.95, allowed=Range(0, 1, open_low=True))  # of every interval


@dataclass
class Config:
    """The whole resolved configuration of a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tasks: dict[str, Any] = field(default_factory=task_options)  # per task: its options (Task.options_type)
    train: TrainConfig = field(default_factory=TrainConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.tasks = task_options(self.tasks)


# run settings that do not change results, left out of the run id and of comparisons between runs
_NOT_RESULT_SETTINGS = {"run": ("out", "logger", "progress", "checkpoints", "device")}
# settings left out of the run id while they hold their default (runs from before they existed keep their ids)
_OMITTED_WHEN_EMPTY = {"model": ("factory", "factory_options"), "train": ("part_lr_per_task",)}


def result_settings(values: dict[str, Any]) -> dict[str, Any]:
    """A resolved config (as a dict) without the keys that do not change results
    (output folder, logging, device)."""
    values = copy.deepcopy(values)
    for section, keys in _NOT_RESULT_SETTINGS.items():
        for key in keys:
            values.get(section, {}).pop(key, None)
    for section, keys in _OMITTED_WHEN_EMPTY.items():
        part = values.get(section)
        for key in keys:
            if isinstance(part, dict) and key in part and not part[key]:
                part.pop(key)
    return values


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML config, merged over the file its ``base:`` key names
    (a path relative to it), recursively."""
    try:
        values = load_yaml(path.read_text()) or {}
    except FileNotFoundError:
        raise CLBenchError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise CLBenchError(f"{path}: a folder, not a config file (name a YAML file)") from None
    except UnicodeDecodeError as error:
        raise CLBenchError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except yaml.YAMLError as error:
        raise CLBenchError(f"{path}: not valid YAML ({first_line(error)})") from None
    if not isinstance(values, dict):
        raise CLBenchError(f"{path}: expected a mapping at the top level")
    base = values.pop("base", None)
    if base is None:
        return values
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen:
        raise CLBenchError(f"{path}: 'base: {base}' makes a cycle")
    return _merge(_read_yaml(base_path, (*seen, path.resolve())), values)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both_mappings else value
    return merged


def load_config(path: str | Path | None = None) -> Config:
    """Read a YAML config file (or the defaults when ``path`` is None). A file may
    start from another with ``base: other.yaml`` and override some of its keys."""
    if path is None:
        return Config()
    path = Path(path)
    return from_dict(Config, _read_yaml(path), str(path))


def apply_set(config: Config, assignments: list[str]) -> Config:
    """``config`` with ``KEY=VALUE`` overrides (the ``--set`` form: dotted keys, YAML values) applied and
    re-validated. The backbone name is checked where runs start (the model's registry is above this layer:
    ``cl_bench.experiment.run_id.check_backbone``)."""
    values = to_dict(config)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise CLBenchError(f"--set {assignment}: expected KEY=VALUE")
        *path, last = key.strip().split(".")
        node = values
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CLBenchError(f"--set {assignment}: '{part}' is not a section")
        try:
            node[last] = load_yaml(raw)
        except yaml.YAMLError as error:
            raise CLBenchError(f"--set {assignment}: not a valid YAML value ({first_line(error)})") from None
    return from_dict(Config, values, "config")
