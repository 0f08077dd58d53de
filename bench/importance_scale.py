"""Why MAS's and SI's default strengths are what they are: their importances
against EWC's on the same trained model. Trains the config's model (the smoke
one by default) on its first task, segmentation (AdamW, SI's path integral recorded), then prints the mean,
median and 99th percentile of EWC's, MAS's and SI's importances; a strength
giving the same mean penalty weight as EWC's lambda 1e5 is 1e5 * mean(F) /
mean(importance).

    python bench/importance_scale.py [--epochs 6] [--image-size 32] [--seed 0]
    python bench/importance_scale.py --config experiments/reference.yaml --image-size 320  # real data
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import _common  # noqa: F401  (import path, quiet warnings)
import torch
from torch.utils.data import DataLoader

from cl_bench.config import load_config
from cl_bench.model import build_model
from cl_bench.tasks import build_tasks
from cl_bench.training.criterion import MultiTaskCriterion
from scenarios.benchmark import build_benchmark
from strategies.ewc import TaskAwareEWCPlugin
from strategies.mas import MASPlugin
from strategies.si import TaskAwareSIPlugin

EWC_LAMBDA = 1e5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"),
                        help="the data and model (default: the smoke config)")
    args = parser.parse_args()
    config = load_config(args.config)
    config.data.image_size = args.image_size
    benchmark, tasks = build_benchmark(config), build_tasks(config.tasks)
    torch.manual_seed(args.seed)
    model = build_model(config.model, benchmark.classes, tasks).train()
    criterion = MultiTaskCriterion(tasks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    si, strategy = TaskAwareSIPlugin(c=0.0), SimpleNamespace(model=model)  # c scales the penalty, not Ω
    dataset = benchmark.train_stream[0].dataset
    si.before_training_exp(strategy)
    for _ in range(args.epochs):
        for images, targets, _ in DataLoader(dataset, config.train.batch_size, shuffle=True,
                                             collate_fn=dataset.collate_fn):
            si.before_training_iteration(strategy)
            optimizer.zero_grad()
            criterion(model(images), targets).backward()
            optimizer.step()
            si.after_training_iteration(strategy)
    si.after_training_exp(strategy)
    plain = dataset.eval()
    values = {
        "EWC F": TaskAwareEWCPlugin(1.0).compute_importances(model, criterion, optimizer, plain, "cpu", 8),
        "MAS": MASPlugin(1.0).compute_importances(model, criterion, optimizer, plain, "cpu", 8),
        f"SI Omega (damping {si.damping})": si.importance}
    flat = {name: torch.cat([getattr(v, "data", v).flatten() for v in d.values()]) for name, d in values.items()}
    ewc_mean = flat["EWC F"].mean()
    print(f"{Path(args.config).name}: after {args.epochs} seg epochs at {args.image_size} px (seed {args.seed}):")
    for name, v in flat.items():
        print(f"  {name:<26} mean {v.mean():.2e}  median {v.median():.2e}  p99 {v.quantile(0.99):.2e}  "
              f"strength matching EWC lambda 1e5: {EWC_LAMBDA * ewc_mean / v.mean():.3g}")


if __name__ == "__main__":
    main()
