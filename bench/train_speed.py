"""Training speed of each fast-path piece, alone and together, per task and size.

    python bench/train_speed.py [--data-root DIR] [--sizes 320,512] [--steps 6] [--repeats 3]

Each variant trains the same model (same initial weights) on the task's real
training split through a DataLoader, data loading included, for --steps
minibatches; variants take turns (round robin, --repeats rounds) so machine
noise hits them alike, and the median seconds per minibatch gives images/s
and the ratio to today's path (before the fast path: fp32, segmentation loss
on logits upsampled to the whole input, JPEG decoding every epoch, no
workers). The image cache is measured warm (its first epoch decodes as before).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import time
from dataclasses import dataclass

import pandas as pd
import torch
from _common import config
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from torch.utils.data import DataLoader

from cl_bench.devices import describe, resolve_device
from cl_bench.model import build_model
from cl_bench.tasks import build_tasks
from cl_bench.training.criterion import MultiTaskCriterion
from cl_bench.training.precision import MixedPrecision
from scenarios.benchmark import as_avalanche, build_benchmark
from scenarios.transforms import eval_transform, train_transform


@dataclass(frozen=True)
class Variant:
    name: str
    seg_output_stride: int = 1
    cache: bool = False
    precision: str = "fp32"
    channels_last: bool = False
    workers: int = 0


TODAY = Variant("today's path")
VARIANTS = [
    TODAY,
    Variant("seg loss at 1/4 resolution", seg_output_stride=4),
    Variant("image cache", cache=True),
    Variant("bf16 autocast", precision="bf16"),
    Variant("channels_last", channels_last=True),
    Variant("2 persistent workers", workers=2),
    Variant("seg 1/4 + cache", seg_output_stride=4, cache=True),
    Variant("defaults (seg 1/4 + cache + channels_last)", seg_output_stride=4, cache=True, channels_last=True),
]


class Trainer:
    """One variant's model, optimizer and an endless minibatch iterator over one task's split."""

    def __init__(self, variant: Variant, cfg, benchmark, label: int, initial: dict, device, batch_size: int):
        options = copy.deepcopy(cfg.tasks)
        options["seg"] = dataclasses.replace(options["seg"], output_stride=variant.seg_output_stride)
        tasks = build_tasks(options)
        self.model = build_model(cfg.model, benchmark.classes, tasks)
        self.model.load_state_dict(initial)
        self.model.to(device).train()
        if variant.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.criterion = MultiTaskCriterion(tasks)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.precision = MixedPrecision(variant.precision, device)
        self.variant, self.device = variant, device
        name = benchmark.tasks[label]
        split = tasks[name].open_split(benchmark.source.roots[name], cfg.data.train_split, benchmark.classes[name])
        if variant.cache:  # warm: one full pass decodes and keeps every image
            split.enable_cache()
            for index in range(len(split)):
                split[index]
        size = cfg.data.image_size
        groups = TransformGroups({"train": train_transform(size), "eval": eval_transform(size)})
        dataset = as_avalanche(split, label, groups).train()
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                 collate_fn=dataset.collate_fn, num_workers=variant.workers,
                                 persistent_workers=variant.workers > 0)
        self.batches = self._forever()

    def _forever(self):
        while True:
            yield from self.loader

    def seconds_per_step(self, steps: int) -> float:
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            images, targets, _ = next(self.batches)
            images, targets = images.to(self.device), targets.to(self.device)
            if self.variant.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with self.precision.autocast():
                outputs = self.model(images)
            loss = self.criterion({k: v.float() for k, v in outputs.items()}, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward(loss)
            self.precision.step(self.optimizer)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--sizes", default="320,512")
    parser.add_argument("--tasks", default="seg,det,cls")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cfg = config(args.data_root, size)
        benchmark = build_benchmark(cfg)
        initial = build_model(cfg.model, benchmark.classes, build_tasks(cfg.tasks)).state_dict()
        for name in args.tasks.split(","):
            label = benchmark.tasks.index(name)
            trainers = [Trainer(v, cfg, benchmark, label, initial, device, args.batch_size) for v in VARIANTS]
            for trainer in trainers:
                trainer.seconds_per_step(1)  # warm-up (allocator, workers)
            seconds: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
            for _ in range(args.repeats):
                for trainer in trainers:
                    seconds[trainer.variant.name].append(trainer.seconds_per_step(args.steps))
            base = statistics.median(seconds[TODAY.name])
            for variant in VARIANTS:
                step = statistics.median(seconds[variant.name])
                rows.append({"size": size, "task": name, "variant": variant.name,
                             "images/s": args.batch_size / step, "ratio": base / step})
            print(pd.DataFrame(rows[-len(VARIANTS):]).to_string(index=False, float_format=lambda v: f"{v:.2f}"),
                  flush=True)
    table = pd.DataFrame(rows)
    summary = []
    for size, group in table.groupby("size"):
        # all three tasks one epoch each (equal images per task): total images / total time
        for variant in VARIANTS:
            rates = group.loc[group["variant"] == variant.name, "images/s"]
            summary.append({"size": size, "variant": variant.name,
                            "images/s (all tasks)": len(rates) / (1 / rates).sum()})
    summary = pd.DataFrame(summary)
    summary["ratio"] = summary["images/s (all tasks)"] / summary.groupby("size")["images/s (all tasks)"].transform(
        "first")
    print(f"\ntraining throughput ({describe(device)}, batch {args.batch_size}, median of {args.steps} steps x "
          f"{args.repeats} rounds, {benchmark.source.description}):")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nper size, the three tasks together (harmonic mean: equal images per task):")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
