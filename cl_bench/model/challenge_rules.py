"""The challenge's model rules, checked on a built model: parameters, head
layers, single branch, neck, latency per 512x512 image."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from cl_bench.devices import describe
from cl_bench.errors import CLBenchError, first_line
from cl_bench.model.factory import FactoryModel
from cl_bench.model.neck import ConvBNReLUNeck, FPNLayer, describe_neck, neck_follows_rule
from cl_bench.model.outputs import TaskOutputModel
from cl_bench.model.unified import head_layer_count, is_single_branch

MAX_PARAMS = 8_000_000
HEAD_LAYERS = (2, 3)
MAX_LATENCY_MS = 150.0  # per 512x512 image on a Colab T4
MAX_TRAIN_HOURS = 2.0
KNOWN_NECKS = (FPNLayer, ConvBNReLUNeck)  # the necks whose rule the check knows
_BRANCH = "one branch, one output"
_NECK = "<= 2 ConvBNReLU or 1 FPN layer"
_OUTPUT = "one tensor: every task's channels"


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


def check_model(model: TaskOutputModel, device: torch.device, latency: bool = True,
                per_task_bn: bool = False) -> list[Check]:
    """The challenge's model rules. ``per_task_bn``: the weights keep BatchNorm statistics per task
    (``bn_policy: per_task``), so each task's output needs its own forward pass. A factory's model
    (``model.factory``) is checked where the harness can see the part: its ``head`` and ``neck``
    submodules; a rule it cannot check is INFO, never PASS."""
    counts = model.parameter_counts()
    parts = ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in counts.items() if k != "total")
    checks = [Check("parameters", f"{counts['total'] / 1e6:.3f} M ({parts})", "< 8 M", counts["total"] < MAX_PARAMS),
              *head_checks(getattr(model, "head", None)), neck_check(getattr(model, "neck", None))]
    if isinstance(model, FactoryModel):
        checks.append(output_check(model))
    checks.append(Check("one forward pass", "no: BatchNorm statistics per task" if per_task_bn else "yes",
                        "all three outputs at once", not per_task_bn))
    if latency:
        ms = measure_latency_ms(model, device)
        name = describe(device)
        on_t4 = "T4" in name
        note = "" if on_t4 else "; the T4 figure is not measured here"
        checks.append(Check("latency 512x512", f"{ms:.1f} ms on {name}{note}", "<= 150 ms on a T4",
                            ms <= MAX_LATENCY_MS if on_t4 else None))
    return checks


def head_checks(head: torch.nn.Module | None) -> list[Check]:
    """Layer count and single branch of the head, or INFO where the model shows no ``head``."""
    if head is None:
        unseen = "cannot check: the model has no `head` submodule"
        return [Check("head layers", unseen, "2-3", None), Check("head single branch", unseen, _BRANCH, None)]
    layers = head_layer_count(head)
    try:
        single = is_single_branch(head)
    except Exception as error:  # torch.fx cannot trace every module (data-dependent control flow)
        branch = Check("head single branch", f"cannot check: torch.fx cannot trace the head "
                                             f"({type(error).__name__}: {first_line(error, 80)})", _BRANCH, None)
    else:
        branch = Check("head single branch", "yes" if single else "no", _BRANCH, single)
    return [Check("head layers", str(layers), "2-3", layers in HEAD_LAYERS), branch]


def neck_check(neck: torch.nn.Module | None) -> Check:
    if isinstance(neck, KNOWN_NECKS):
        return Check("neck", describe_neck(neck), _NECK, neck_follows_rule(neck))
    if neck is None:
        return Check("neck", "cannot check: the model has no `neck` submodule", _NECK, None)
    return Check("neck", f"cannot check: its own neck ({type(neck).__name__}, {head_layer_count(neck)} layers "
                         "with weights)", _NECK, None)


@torch.no_grad()
def output_check(model: FactoryModel, size: int = 64) -> Check:
    """A factory's model returns ONE tensor with the head layout's channels (a 64 px input, eval mode)."""
    training = model.training
    parameter = next(model.parameters(), None)
    x = torch.zeros(1, 3, size, size, device=parameter.device if parameter is not None else "cpu")
    try:
        model.eval()
        raw = model.forward_raw(x)
    except CLBenchError as error:
        return Check("one output tensor", str(error), _OUTPUT, False)
    finally:
        model.train(training)
    return Check("one output tensor", f"[{', '.join(map(str, raw.shape))}] for a {size} px input", _OUTPUT, True)


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.status}  {c.name:<{width}}  {c.value}  (rule: {c.limit})" for c in checks)
