"""The Avalanche task-incremental benchmark: one experience per task, task
labels in the configured order, ONE collate shared by all tasks. Every
experience carries its task's name (``experience.task_name``)."""

from __future__ import annotations

from pathlib import Path

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import AvalancheDataset, ConstantSequence, DataAttribute
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from avalanche.benchmarks.utils.utils import TaskSet

from cl_bench.config import Config
from cl_bench.errors import CLBenchError
from cl_bench.tasks import build_tasks, task_order
from cl_bench.tasks.batch import collate_multitask
from scenarios.common import TaskSplit
from scenarios.layout import DataSource, resolve_data
from scenarios.transforms import eval_transform, train_transform


class TaskAwareDataset(AvalancheDataset):
    """An AvalancheDataset with task labels and Avalanche's task-aware API
    (``task_set``, used by the replay loader), for targets of any kind; subsets
    and concatenations keep the current transform group."""

    @property
    def task_pattern_indices(self):
        return self.targets_task_labels.val_to_idx

    @property
    def task_set(self) -> TaskSet:
        return TaskSet(self)

    def subset(self, indices):
        return super().subset(indices).with_transforms(self._flat_data._transform_groups.current_group)

    def concat(self, other):
        return super().concat(other).with_transforms(self._flat_data._transform_groups.current_group)

    def __hash__(self):
        return id(self)


class TaskIncrementalBenchmark(CLScenario):
    """A CLScenario with ``train_stream`` and ``test_stream`` (experience i =
    task ``tasks[i]``, task label i), plus what evaluation and reports need:
    the task order, class lists, raw splits and where the data came from."""

    def __init__(self, scenario: CLScenario, tasks: list[str], classes: dict[str, list[str]],
                 splits: dict[str, dict[str, TaskSplit]], source: DataSource, image_size: int,
                 evaluated_on: str):
        super().__init__(scenario.streams.values())
        self.tasks = tasks
        self.classes = classes
        self.splits = splits
        self.source = source
        self.image_size = image_size
        self.evaluated_on = evaluated_on  # the split the test stream reads: val, or the tune split carved from train


def as_avalanche(split: TaskSplit, task_label: int, transforms: TransformGroups) -> TaskAwareDataset:
    """Wrap a raw split: samples become ``(image, target, task_label)``."""
    labels = DataAttribute(ConstantSequence(task_label, len(split)), "targets_task_labels", use_in_getitem=True)
    return TaskAwareDataset([split], data_attributes=[labels], transform_groups=transforms,
                            collate_fn=collate_multitask)


def eval_dataset(split: TaskSplit, task_label: int, image_size: int) -> TaskAwareDataset:
    """A split as evaluation sees it: resized and normalised, no augmentation."""
    transforms = TransformGroups({"train": eval_transform(image_size), "eval": eval_transform(image_size)})
    return as_avalanche(split, task_label, transforms).eval()


def carve_tune_split(size: int, count: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of a training split of ``size`` images: those kept for training and the
    ``count`` held out for tuning, chosen by a seeded permutation (the same for every run)."""
    if not 0 < count < size:
        raise CLBenchError(f"data.tune_split: {count} images cannot be held out of a training split of {size} "
                           f"(allowed: 1 to {size - 1})")
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[count:]), sorted(order[:count])


def build_benchmark(config: Config) -> TaskIncrementalBenchmark:
    """Read the three datasets and build the task-incremental benchmark. With
    ``data.tune_split`` > 0 the test stream is that many training images per
    task, held out of training (for tuning); otherwise it is ``data.test_split``."""
    data = config.data
    order = task_order(data.order)
    tasks = build_tasks(config.tasks)
    source = resolve_data(data, order)
    classes: dict[str, list[str]] = {}
    splits: dict[str, dict[str, TaskSplit]] = {"train": {}, "test": {}}
    streams: dict[str, list[TaskAwareDataset]] = {"train": [], "test": []}
    groups = {"train": train_transform(data.image_size, data.augment), "eval": eval_transform(data.image_size)}
    for label, name in enumerate(order):
        task, root = tasks[name], source.roots[name]
        classes[name] = task.resolve_classes(root, data.train_split, data.classes.get(name))
        for stream, split_name in (("train", data.train_split), ("test", data.test_split)):
            if stream == "test" and data.tune_split:
                continue  # the tune split is carved from the training split below
            split = task.open_split(Path(root), split_name, classes[name])
            if data.cache_images:
                split.enable_cache()
            splits[stream][name] = split
            dataset = as_avalanche(split, label, TransformGroups(groups))
            streams[stream].append(dataset.train() if stream == "train" else dataset.eval())
        if data.tune_split:
            keep, held = carve_tune_split(len(splits["train"][name]), data.tune_split, data.tune_split_seed)
            full = streams["train"].pop()
            streams["train"].append(full.subset(keep).train())
            streams["test"].append(full.subset(held).eval())
            splits["test"][name] = splits["train"][name]  # ground truth of the held-out images
    scenario = with_task_labels(benchmark_from_datasets(**streams))
    for stream in (scenario.train_stream, scenario.test_stream):
        for name, experience in zip(order, stream):
            experience.task_name = name
    evaluated_on = (f"tune split: {data.tune_split} images per task held out of {data.train_split} "
                    f"(seed {data.tune_split_seed})" if data.tune_split else data.test_split)
    return TaskIncrementalBenchmark(scenario, order, classes, splits, source, data.image_size, evaluated_on)
