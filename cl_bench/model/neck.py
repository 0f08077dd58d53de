"""Necks (challenge rule: at most 2 ConvBNReLU layers, or a single FPN layer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from cl_bench.config import NECKS  # the names model.neck allows, checked when the config is loaded


class FPNLayer(nn.Module):
    """One FPN merge: the stride-32 map, laterally projected and upsampled, is
    added to the projected stride-16 map, then smoothed by one 3x3 conv."""

    def __init__(self, in16: int, in32: int, out: int):
        super().__init__()
        self.lateral16 = nn.Conv2d(in16, out, 1)
        self.lateral32 = nn.Conv2d(in32, out, 1)
        self.smooth = Conv2dNormActivation(out, out, 3)

    def forward(self, c16: torch.Tensor, c32: torch.Tensor) -> torch.Tensor:
        top = F.interpolate(self.lateral32(c32), size=c16.shape[-2:], mode="nearest")
        return self.smooth(self.lateral16(c16) + top)


class ConvBNReLUNeck(nn.Module):
    """1 or 2 ConvBNReLU layers on the stride-16 map."""

    def __init__(self, in16: int, out: int, layers: int = 2):
        super().__init__()
        if layers not in (1, 2):
            raise ValueError("the convbnrelu neck has 1 or 2 layers")
        blocks = [Conv2dNormActivation(in16, out, 3)]
        if layers == 2:
            blocks.append(Conv2dNormActivation(out, out, 3))
        self.layers = nn.Sequential(*blocks)

    def forward(self, c16: torch.Tensor, c32: torch.Tensor) -> torch.Tensor:
        return self.layers(c16)


def build_neck(kind: str, channels: tuple[int, int], out: int, layers: int = 2) -> nn.Module:
    if kind == "fpn":
        return FPNLayer(channels[0], channels[1], out)
    if kind == "convbnrelu":
        return ConvBNReLUNeck(channels[0], out, layers)
    raise ValueError(f"unknown neck '{kind}' (known: {', '.join(NECKS)})")


def describe_neck(neck: nn.Module) -> str:
    """The neck against the rule, e.g. ``1 FPN layer`` or ``2 ConvBNReLU``."""
    if isinstance(neck, FPNLayer):
        return "1 FPN layer"
    return f"{len(neck.layers)} ConvBNReLU"


def neck_follows_rule(neck: nn.Module) -> bool:
    return isinstance(neck, FPNLayer) or (isinstance(neck, ConvBNReLUNeck) and len(neck.layers) <= 2)
