"""Peak memory of a short training run (host RSS, and CUDA allocations on a GPU).

    python bench/memory.py [--image-size 512] [--epochs 1] [--strategy ewc_replay]
"""

from __future__ import annotations

import argparse
import resource
import tempfile

import pandas as pd
import torch
from _common import config

from cl_bench.experiment.runner import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--strategy", default="ewc_replay")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cfg = config(args.data_root, args.image_size)
    cfg.strategy.name = args.strategy
    cfg.train.epochs, cfg.train.batch_size = args.epochs, args.batch_size
    cfg.run.device, cfg.run.logger = args.device, "none"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as out:
        cfg.run.out = out
        outcome = run_experiment(cfg, log=lambda _: None)
    rows = [{"measure": "peak host RSS (MiB), whole process", "value": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024}, {"measure": "host RSS before the run (MiB)", "value": before}]
    if torch.cuda.is_available():
        rows.append({"measure": "peak CUDA memory allocated (MiB)", "value": torch.cuda.max_memory_allocated() / 2**20})
    print(f"{args.strategy}, {args.epochs} epoch(s) per task, {args.image_size} px, batch {args.batch_size}, "
          f"train time {outcome.summary['train_time_s']:.1f} s; {outcome.summary['data']}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.0f}"))


if __name__ == "__main__":
    main()
