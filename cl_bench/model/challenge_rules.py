"""The challenge's model rules, checked on a built model: parameters, head
layers, single branch, neck, latency per 512x512 image."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from cl_bench.devices import describe
from cl_bench.model.neck import describe_neck, neck_follows_rule
from cl_bench.model.unified import UnifiedModel, head_layer_count, is_single_branch

MAX_PARAMS = 8_000_000
HEAD_LAYERS = (2, 3)
MAX_LATENCY_MS = 150.0  # per 512x512 image on a Colab T4
MAX_TRAIN_HOURS = 2.0


@dataclass
class Check:
    name: str
    value: str
    limit: str
    passed: bool | None  # None: measured, but not against the rule's reference device

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "INFO"}[self.passed]


@torch.inference_mode()
def measure_latency_ms(model: torch.nn.Module, device: torch.device, size: int = 512,
                       warmup: int = 5, runs: int = 20) -> float:
    """Median wall time of one forward pass (batch 1, eval mode) after warm-up."""
    model = model.to(device).eval()
    x = torch.randn(1, 3, size, size, device=device)
    times = []
    for i in range(warmup + runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def check_model(model: UnifiedModel, device: torch.device, latency: bool = True,
                per_task_bn: bool = False) -> list[Check]:
    """The challenge's model rules. ``per_task_bn``: the weights keep BatchNorm statistics per task
    (``bn_policy: per_task``), so each task's output needs its own forward pass."""
    counts = model.parameter_counts()
    parts = ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in counts.items() if k != "total")
    layers = head_layer_count(model.head)
    checks = [
        Check("parameters", f"{counts['total'] / 1e6:.3f} M ({parts})", "< 8 M", counts["total"] < MAX_PARAMS),
        Check("head layers", str(layers), "2-3", layers in HEAD_LAYERS),
        Check("head single branch", "yes" if is_single_branch(model.head) else "no", "one branch, one output",
              is_single_branch(model.head)),
        Check("neck", describe_neck(model.neck), "<= 2 ConvBNReLU or 1 FPN layer", neck_follows_rule(model.neck)),
        Check("one forward pass", "no: BatchNorm statistics per task" if per_task_bn else "yes",
              "all three outputs at once", not per_task_bn),
    ]
    if latency:
        ms = measure_latency_ms(model, device)
        name = describe(device)
        on_t4 = "T4" in name
        note = "" if on_t4 else "; the T4 figure is not measured here"
        checks.append(Check("latency 512x512", f"{ms:.1f} ms on {name}{note}", "<= 150 ms on a T4",
                            ms <= MAX_LATENCY_MS if on_t4 else None))
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.status}  {c.name:<{width}}  {c.value}  (rule: {c.limit})" for c in checks)
