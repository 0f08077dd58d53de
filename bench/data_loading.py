"""Time to write the synthetic default and to load one epoch of all three tasks.

    python bench/data_loading.py [--image-size 64] [--data-root DIR] [--workers 0]

Goal (issue #2): synthetic creation + one epoch of every task < 20 s on a
2-core machine. Prints one table; times are wall-clock of this run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (quiet imports)
import pandas as pd
from torch.utils.data import DataLoader

from cl_bench.config import Config, DataConfig
from scenarios.benchmark import build_benchmark
from scenarios.synthetic import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--data-root", help="time this root instead of a freshly written synthetic default")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root
        if root is None:
            start = time.perf_counter()
            root = write_synthetic(Path(tmp) / "data")
            rows.append({"step": "write synthetic default", "images": "", "seconds": time.perf_counter() - start})
        start = time.perf_counter()
        bm = build_benchmark(Config(DataConfig(root=str(root), image_size=args.image_size)))
        rows.append({"step": "build benchmark (read annotations)", "images": "",
                     "seconds": time.perf_counter() - start})
        for stream in (bm.train_stream, bm.test_stream):
            for exp in stream:
                start = time.perf_counter()
                loader = DataLoader(exp.dataset, batch_size=args.batch_size, collate_fn=exp.dataset.collate_fn,
                                    num_workers=args.workers, shuffle=stream.name == "train")
                count = sum(len(targets) for _, targets, _ in loader)
                rows.append({"step": f"one epoch {stream.name} {bm.tasks[exp.task_label]}", "images": count,
                             "seconds": time.perf_counter() - start})
    table = pd.DataFrame(rows)
    total = table["seconds"].sum()
    print(f"data: {'synthetic default' if args.data_root is None else args.data_root}, "
          f"image size {args.image_size}, workers {args.workers}")
    print(table.to_string(index=False, float_format=lambda s: f"{s:.3f}"))
    print(f"total {total:.2f} s (goal < 20 s for the synthetic default)")


if __name__ == "__main__":
    main()
