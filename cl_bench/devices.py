"""Device selection and where a run ran."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

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
    """The GPU's name, or ``CPU (<model name>)``: machines of one kind differ by up to 2x in speed."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()})"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name from Linux's ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(device: torch.device) -> str:
    """Where a stage trained: the device and, on CPU, the threads torch used."""
    return describe(device) if device.type == "cuda" else f"{describe(device)}, {torch.get_num_threads()} threads"


LIBRARIES = ("torch", "torchvision", "avalanche-lib", "pycocotools")


def environment(device: torch.device) -> dict[str, str]:
    """Where a run ran: the device and the versions that shape its numbers."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"device": describe(device), "cl_bench": code_version(), **versions}


_CHECKOUT = Path(__file__).resolve().parents[1]


def code_version(repo: Path = _CHECKOUT) -> str:
    """The git commit of this checkout (``-dirty`` when its tracked Python
    files have uncommitted changes), or ``unknown`` outside a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no",
                                "--", "*.py"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
