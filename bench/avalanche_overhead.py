"""Avalanche overhead: the same training epochs of the same model on the same
data through our strategy (MultiTaskTemplate + plugins) and through a plain
PyTorch loop, alternated, timed in one run. Goal: ratio <= 1.10.

    python bench/avalanche_overhead.py [--image-size 128] [--repeats 3] [--task seg]
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch
from _common import config
from avalanche.training.plugins import EvaluationPlugin
from torch.utils.data import DataLoader

from cl_bench.model import build_model
from cl_bench.tasks import build_tasks
from cl_bench.training.criterion import MultiTaskCriterion
from cl_bench.training.loss_log import LossLogPlugin
from cl_bench.training.template import MultiTaskTemplate
from scenarios.benchmark import build_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--task", default="seg")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cfg = config(args.data_root, args.image_size)
    benchmark = build_benchmark(cfg)
    tasks = build_tasks(cfg.tasks)
    label = benchmark.tasks.index(args.task)
    experience = benchmark.train_stream[label]
    model = build_model(cfg.model, benchmark.classes, tasks)
    criterion = MultiTaskCriterion(tasks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    strategy = MultiTaskTemplate(model=model, optimizer=optimizer, criterion=criterion,
                                 train_mb_size=args.batch_size, train_epochs=1, device="cpu",
                                 plugins=[LossLogPlugin(criterion)], evaluator=EvaluationPlugin(loggers=[]))

    def plain() -> None:
        data = experience.dataset.train()
        loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, collate_fn=data.collate_fn)
        model.train()
        for images, targets, _ in loader:
            optimizer.zero_grad()
            criterion(model(images), targets).backward()
            optimizer.step()

    def avalanche() -> None:
        strategy.train(experience, eval_streams=[])

    avalanche()  # warm-up both paths
    plain()
    times: dict[str, list[float]] = {"plain PyTorch loop": [], "Avalanche strategy": []}
    for _ in range(args.repeats):
        for name, run in (("plain PyTorch loop", plain), ("Avalanche strategy", avalanche)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["plain PyTorch loop"])
    rows = [{"path": name, "median s/epoch": statistics.median(t), "ratio": statistics.median(t) / base}
            for name, t in times.items()]
    print(f"one epoch of {args.task} ({len(experience.dataset)} images, {args.image_size} px, batch "
          f"{args.batch_size}, CPU, {args.repeats} alternated repeats; {benchmark.source.description}):")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("goal: Avalanche / plain <= 1.10")


if __name__ == "__main__":
    main()
