"""Single-task reference on the real minis: each task trained alone from the
pretrained backbone (the `single_task` strategy, the same template and
plugins as every strategy), then its val metrics and the time per epoch.

    python bench/single_task.py --data-root ../shared/datasets/real-mini \
        --backbone-weights ../shared/weights [--image-size 320] [--epochs 10] \
        [--set train.epochs_per_task.det=40]

Prints one table (absolute times are context only: machines are noisy). The
run lands in --out like any run, so a repeated command is skipped.
"""

from __future__ import annotations

import argparse
import os

import _common  # noqa: F401  (quiet imports)
import pandas as pd

from cl_bench.config import Config, DataConfig, ModelConfig, RunConfig, StrategyConfig, TrainConfig, apply_set
from cl_bench.experiment.runner import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("CL_BENCH_REAL_DATA", "../shared/datasets/real-mini"))
    parser.add_argument("--backbone-weights", default=os.environ.get("CL_BENCH_WEIGHTS", "../shared/weights"))
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--backbone-lr-scale", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="results/bench_single_task", help="results folder of the runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config override")
    args = parser.parse_args()

    config = Config(DataConfig(root=args.data_root, image_size=args.image_size, num_workers=args.workers),
                    ModelConfig(backbone_weights=args.backbone_weights),
                    train=TrainConfig(epochs=args.epochs, lr=args.lr, backbone_lr_scale=args.backbone_lr_scale,
                                      batch_size=args.batch_size),
                    strategy=StrategyConfig("single_task"),
                    run=RunConfig(seed=args.seed, out=args.out, device=args.device, logger="none"))
    outcome = run_experiment(apply_set(config, args.set))
    summary = outcome.summary
    rows = []
    for timing in summary["timings"]:
        name = timing["task"]
        row = {"task": name, "epochs": timing["epochs"], "s/epoch": round(timing["train_s"] / timing["epochs"], 1)}
        for part in (summary, summary["secondary"]):
            row[part["metrics"][name]] = round(part["tasks"][name]["final"], 4)
        rows.append(row)
    print(f"\nsingle-task val metrics, {args.image_size} px, lr {args.lr} (backbone x{args.backbone_lr_scale}), "
          f"batch {args.batch_size}, seed {args.seed}, pretrained {config.model.backbone} ({outcome.run_dir}):")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
