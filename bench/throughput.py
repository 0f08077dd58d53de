"""Training throughput per task, inference latency (backbone alone vs the full
unified model, plus decoding/NMS), FLOPs and the 2-hour training budget.

    python bench/throughput.py [--sizes 320,512] [--steps 4] [--device cpu|cuda]

Ratios are measured side by side in this run; absolute times are context. The
T4 budget line is an ESTIMATE from FLOPs unless run on a T4.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch
from _common import config
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from cl_bench.devices import describe, resolve_device
from cl_bench.model import build_model
from cl_bench.model.challenge_rules import measure_latency_ms
from cl_bench.tasks import build_tasks
from cl_bench.training.criterion import MultiTaskCriterion
from scenarios.benchmark import build_benchmark

T4_FP32_TFLOPS = 8.1  # NVIDIA's peak figure; real training reaches a fraction of it
T4_UTILISATION = 0.25  # assumed for a small MobileNet: depthwise convs run far below peak


def train_images_per_second(model, criterion, dataset, device, steps: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=dataset.collate_fn, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [next(iter(loader)) for _ in range(steps + 1)]  # decoded once: time the model, not JPEG decoding
    model.train()
    times = []
    for i, (images, targets, _) in enumerate(batches):
        images, targets = images.to(device), targets.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad()
        criterion(model(images), targets).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def forward_flops(model, size: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.randn(1, 3, size, size))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root")
    parser.add_argument("--sizes", default="320,512")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)

    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cfg = config(args.data_root, size)
        benchmark = build_benchmark(cfg)
        tasks = build_tasks(cfg.tasks)
        model = build_model(cfg.model, benchmark.classes, tasks).to(device)
        criterion = MultiTaskCriterion(tasks)
        for label, name in enumerate(benchmark.tasks):
            ips = train_images_per_second(model, criterion, benchmark.train_stream[label].dataset, device,
                                          args.steps, args.batch_size)
            rows.append({"size": size, "task": name, "train images/s": ips})
    print(f"training throughput ({describe(device)}, batch {args.batch_size}, median of {args.steps} steps; "
          f"{benchmark.source.description}):")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    cfg = config(args.data_root, 512)
    benchmark = build_benchmark(cfg)
    tasks = build_tasks(cfg.tasks)
    model = build_model(cfg.model, benchmark.classes, tasks).to(device).eval()
    backbone_ms = measure_latency_ms(model.backbone, device)
    full_ms = measure_latency_ms(model, device)
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 512, 512, device=device))
        decode_times = []
        for _ in range(20):
            start = time.perf_counter()
            tasks["det"].detect(out["det"], (512, 512))
            decode_times.append((time.perf_counter() - start) * 1000)
    latency = pd.DataFrame([
        {"part": "backbone alone", "ms / 512x512 image": backbone_ms, "ratio to backbone": 1.0},
        {"part": "full unified model", "ms / 512x512 image": full_ms, "ratio to backbone": full_ms / backbone_ms},
        {"part": "det decoding + NMS", "ms / 512x512 image": statistics.median(decode_times),
         "ratio to backbone": statistics.median(decode_times) / backbone_ms},
    ])
    print(f"\ninference, batch 1, eval mode, median after warm-up ({describe(device)}); goal full/backbone <= 1.5:")
    print(latency.to_string(index=False, float_format=lambda v: f"{v:.2f}"))

    flops = forward_flops(model.cpu(), 512)
    images = sum(len(e.dataset) for e in benchmark.train_stream)
    per_epoch_flops = 3 * flops * images  # forward + backward ~ 3x forward
    seconds_per_epoch = per_epoch_flops / (T4_FP32_TFLOPS * 1e12 * T4_UTILISATION)
    print(f"\nforward FLOPs per 512x512 image: {flops / 1e9:.2f} GFLOP. ESTIMATE for a T4 (fp32 "
          f"{T4_FP32_TFLOPS} TFLOP/s at an assumed {T4_UTILISATION:.0%} utilisation): one epoch of all three "
          f"tasks ({images} images) ~{seconds_per_epoch:.1f} s of compute, so the 2 h budget allows about "
          f"{7200 / seconds_per_epoch:.0f} epochs in all before data loading; not measured on a T4.")


if __name__ == "__main__":
    main()
