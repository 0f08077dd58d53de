"""Evaluation time per task on its val split: data + forward, decoding and
metric updates, and the final metric (COCOeval for detection), in one run.

    python bench/evaluation_speed.py [--image-size 512] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from _common import config
from torch.utils.data import DataLoader

from cl_bench.devices import describe, resolve_device
from cl_bench.model import build_model
from cl_bench.tasks import build_tasks
from scenarios.benchmark import build_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cfg = config(args.data_root, args.image_size)
    benchmark = build_benchmark(cfg)
    tasks = build_tasks(cfg.tasks)
    model = build_model(cfg.model, benchmark.classes, tasks).to(device).eval()
    rows = []
    for label, name in enumerate(benchmark.tasks):
        dataset, split = benchmark.test_stream[label].dataset, benchmark.splits["test"][name]
        metric = tasks[name].metric(split)
        forward = update = 0.0
        start = time.perf_counter()
        with torch.inference_mode():
            mark = time.perf_counter()
            for images, targets, _ in DataLoader(dataset, batch_size=args.batch_size, collate_fn=dataset.collate_fn):
                outputs = model(images.to(device))
                rows_of = targets[name]
                now = time.perf_counter()
                forward += now - mark
                metric.update(outputs[name][rows_of.rows.to(device)], rows_of)
                mark = time.perf_counter()
                update += mark - now
        mark = time.perf_counter()
        metric.result()
        final = time.perf_counter() - mark
        rows.append({"task": name, "images": len(dataset), "data + forward s": forward,
                     "decode + update s": update, "final metric s": final,
                     "total s": time.perf_counter() - start})
    print(f"evaluation of an untrained model, {args.image_size} px, batch {args.batch_size}, {describe(device)}; "
          f"{benchmark.source.description}")
    print("(untrained detections are many low scores: the worst case for NMS and COCOeval)")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
