"""Device selection."""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from cl_bench.errors import CLBenchError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; an unavailable CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CLBenchError(f"--device: unknown device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLBenchError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return device


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


LIBRARIES = ("torch", "torchvision", "avalanche-lib", "pycocotools")


def environment(device: torch.device) -> dict[str, str]:
    """Where a run ran: the device and the versions that shape its numbers."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"device": describe(device), **versions}
