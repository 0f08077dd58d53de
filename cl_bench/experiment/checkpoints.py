"""Our own checkpoints (not Avalanche's dill-pickled strategy, which breaks:
avalanche issues #1549, #1680): plain tensors and Python values, loadable with
``torch.load(weights_only=True)``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_bench.atomic import atomic_path
from cl_bench.errors import CLBenchError

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class RestoreContext:
    """What a plugin may need to rebuild its state: the live model, the device,
    and the training datasets of the experiences (replay buffer indices point into them)."""

    model: torch.nn.Module
    device: torch.device
    datasets: list


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss_np))


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    with atomic_path(run_dir / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CLBenchError(f"{path}: unreadable checkpoint ({str(error).splitlines()[0][:100]}); "
                           f"delete it to start the run afresh") from None
