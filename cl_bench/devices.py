"""Device selection."""

from __future__ import annotations

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
