"""Single-task reference on the real minis: each task trained alone from the
pretrained backbone, then its val metrics and the time per epoch.

    python bench/single_task.py --data-root ../shared/datasets/real-mini \
        --backbone-weights ../shared/weights [--image-size 320] [--epochs 10]

Prints one table (absolute times are context only: machines are noisy).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_bench.cli import quiet_third_party_warnings  # noqa: E402

quiet_third_party_warnings()

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from cl_bench.config import Config, DataConfig, ModelConfig  # noqa: E402
from cl_bench.devices import resolve_device  # noqa: E402
from cl_bench.model import build_model  # noqa: E402
from cl_bench.single_task import train_single_task  # noqa: E402
from cl_bench.tasks import build_tasks  # noqa: E402
from scenarios.benchmark import build_benchmark  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("CL_BENCH_REAL_DATA", "../shared/datasets/real-mini"))
    parser.add_argument("--backbone-weights", default=os.environ.get("CL_BENCH_WEIGHTS", "../shared/weights"))
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--backbone-lr-scale", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tasks", default="seg,det,cls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    config = Config(DataConfig(root=args.data_root, image_size=args.image_size),
                    ModelConfig(backbone_weights=args.backbone_weights))
    benchmark = build_benchmark(config)
    tasks = build_tasks(config.tasks)
    device = resolve_device(args.device)
    rows = []
    for name in args.tasks.split(","):
        torch.manual_seed(args.seed)
        model = build_model(config.model, benchmark.classes, tasks)
        result = train_single_task(model, benchmark, tasks[name], epochs=args.epochs, lr=args.lr,
                                   batch_size=args.batch_size, device=str(device), num_workers=args.workers,
                                   backbone_lr_scale=args.backbone_lr_scale, seed=args.seed)
        row = {"task": name, "epochs": result.epochs, "s/epoch": round(result.seconds_per_epoch, 1)}
        row.update({k: round(v, 4) for k, v in result.metrics.items()})
        rows.append(row)
        print(row, flush=True)
    print(f"\nsingle-task val metrics, {args.image_size} px, {args.epochs} epochs, lr {args.lr} "
          f"(backbone x{args.backbone_lr_scale}), "
          f"batch {args.batch_size}, seed {args.seed}, {device}, pretrained {config.model.backbone}:")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
