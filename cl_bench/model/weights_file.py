"""The self-describing weights file eval.py reads: state_dict + model config (a factory model's
``model.factory`` string and options included) + class lists + task options + preprocessing,
loadable with ``weights_only=True``."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import torch

from cl_bench.atomic import write_bytes
from cl_bench.config import IMAGENET_MEAN, IMAGENET_STD, ModelConfig
from cl_bench.dataclass_io import from_dict, to_dict
from cl_bench.errors import CLBenchError, first_line
from cl_bench.model.batchnorm_stats import load_stats
from cl_bench.model.outputs import TaskOutputModel
from cl_bench.model.unified import build_model
from cl_bench.tasks import build_tasks, task_options

FORMAT = "cl_bench.weights/1"


def save_weights(model: TaskOutputModel, path: str | Path, image_size: int, tasks: dict[str, Any],
                 meta: dict[str, Any] | None = None,
                 bn_stats: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """Write ``model`` with everything needed to rebuild and evaluate it.
    ``tasks`` are the task options (``Config.tasks``); ``bn_stats`` (BN policy
    ``per_task``) holds each task's BatchNorm statistics."""
    config = dataclasses.replace(model.config, backbone_weights="none")  # weights come from the state_dict
    payload = {
        "format": FORMAT,
        "model": to_dict(config),
        "tasks": {name: to_dict(options) for name, options in tasks.items() if name in model.classes},
        "classes": model.classes,
        "preprocess": {"image_size": image_size, "resize": "square", "mean": list(IMAGENET_MEAN),
                       "std": list(IMAGENET_STD)},
        "meta": meta or {},
        "bn_stats": bn_stats or {},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
    return Path(path)


@dataclasses.dataclass
class LoadedWeights:
    model: TaskOutputModel
    tasks: dict[str, Any]
    image_size: int
    meta: dict[str, Any]
    bn_stats: dict[str, dict[str, torch.Tensor]]

    def prepare_for(self, task: str) -> TaskOutputModel:
        """The model, with the task's own BatchNorm statistics when it has them."""
        if task in self.bn_stats:
            load_stats(self.model, self.bn_stats[task])
        return self.model


def load_weights(path: str | Path, device: str = "cpu") -> LoadedWeights:
    """Rebuild the model of a weights file; any problem is one CLBenchError line."""
    path = Path(path)
    if not path.is_file():
        raise CLBenchError(f"{path}: weights file not found")
    if path.stat().st_size == 0:
        raise CLBenchError(f"{path}: empty file (0 bytes), not a weights file; export it again")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CLBenchError(f"{path}: not a readable weights file ({first_line(error)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CLBenchError(f"{path}: not a cl_bench weights file (export one with `run_bench.py export`)")
    image_size = preprocess_image_size(path, payload)
    check_finite(path, payload)
    try:
        model_config = from_dict(ModelConfig, payload["model"], f"{path}:model")
        tasks = task_options(payload["tasks"], f"{path}:tasks")
        model = build_model(model_config, payload["classes"], build_tasks(tasks))
        model.load_state_dict(payload["state_dict"], strict=True)
    except CLBenchError as error:  # a bad model description, or a factory that cannot be imported or fails
        raise CLBenchError(str(error) if str(error).startswith(str(path)) else f"{path}: {error}") from None
    except (KeyError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:160]
        raise CLBenchError(f"{path}: weights do not match their model description ({detail})") from None
    return LoadedWeights(model.to(device).eval(), tasks, image_size, payload.get("meta", {}),
                         payload.get("bn_stats", {}))


def preprocess_image_size(path: Path, payload: dict[str, Any]) -> int:
    """The embedded ``preprocess.image_size``: a positive whole number of pixels, else one line."""
    preprocess = payload.get("preprocess")
    if not isinstance(preprocess, dict) or "image_size" not in preprocess:
        raise CLBenchError(f"{path}: preprocess.image_size is missing; export the weights again")
    size = preprocess["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise CLBenchError(f"{path}: preprocess.image_size is {size!r}, not a positive number of pixels")
    return size


def check_finite(path: Path, payload: dict[str, Any]) -> None:
    """Refuse weights holding NaN or inf (they evaluate to plausible-looking numbers): one line
    naming the first such tensor and how many hold them."""
    state, per_task = payload.get("state_dict"), payload.get("bn_stats")
    tensors = {f"state_dict.{key}": value for key, value in state.items()} if isinstance(state, dict) else {}
    for task, stats in per_task.items() if isinstance(per_task, dict) else ():
        if isinstance(stats, dict):
            tensors.update({f"bn_stats.{task}.{key}": value for key, value in stats.items()})
    bad = [key for key, value in tensors.items()
           if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CLBenchError(f"{path}: tensor {bad[0]}{more} holds non-finite values (NaN or inf); "
                           "these weights cannot be evaluated")
