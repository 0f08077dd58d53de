"""Our own checkpoints (not Avalanche's dill-pickled strategy, which breaks:
avalanche issues #1549, #1680): plain tensors and Python values, loadable with
``torch.load(weights_only=True)``.

The file holds the serialised state as bytes with their sha256, checked on
load: a checkpoint damaged anywhere is refused instead of resumed from."""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cl_bench.atomic import write_bytes
from cl_bench.errors import CLBenchError, first_line

CHECKPOINT = "checkpoint.pt"
FORMAT = "cl_bench.checkpoint/2"


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


def _serialise(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _load(data: bytes | Any) -> Any:
    return torch.load(io.BytesIO(data) if isinstance(data, bytes) else data, map_location="cpu", weights_only=True)


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically with the sha256 of its serialised bytes."""
    content = _serialise(state)
    write_bytes(run_dir / CHECKPOINT, _serialise({
        "format": FORMAT, "sha256": hashlib.sha256(content).hexdigest(),
        "content": torch.frombuffer(bytearray(content), dtype=torch.uint8)}))


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The state of the run folder's checkpoint (None without one); an empty,
    unreadable or damaged file is one CLBenchError line."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    advice = "delete it to start the run afresh"
    if path.stat().st_size == 0:
        raise CLBenchError(f"{path}: empty checkpoint (0 bytes); {advice}")
    try:
        wrapper = _load(path)
        if not isinstance(wrapper, dict) or wrapper.get("format") != FORMAT:
            raise CLBenchError(f"{path}: not a checkpoint of this cl_bench version ({FORMAT}); {advice}")
        content = wrapper["content"].numpy().tobytes()
        if hashlib.sha256(content).hexdigest() != wrapper["sha256"]:
            raise CLBenchError(f"{path}: damaged checkpoint (its content does not match its sha256); {advice}")
        return _load(content)
    except CLBenchError:
        raise
    except Exception as error:  # torch raises many types for a bad file
        raise CLBenchError(f"{path}: unreadable checkpoint ({first_line(error, 100)}); {advice}") from None
