"""BatchNorm running statistics of a model: copy them out, put them back
(per-task statistics in training and in exported weights)."""

from __future__ import annotations

import torch
from torch import nn

_STAT_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def batchnorm_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def snapshot_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every BN layer's running statistics, keyed ``layer.stat``."""
    return {f"{name}.{key}": getattr(bn, key).detach().clone()
            for name, bn in batchnorm_layers(model).items() for key in _STAT_KEYS}


def load_stats(model: nn.Module, stats: dict[str, torch.Tensor]) -> None:
    for name, bn in batchnorm_layers(model).items():
        for key in _STAT_KEYS:
            getattr(bn, key).copy_(stats[f"{name}.{key}"])
