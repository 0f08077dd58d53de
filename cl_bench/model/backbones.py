"""Backbones in a registry: each yields stride-16 and stride-32 feature maps.

torchvision's ``features`` of these networks end at stride 32; the stride-16
map is the output of an intermediate stage.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

from cl_bench.errors import CLBenchError, first_line


@dataclass(frozen=True)
class BackboneSpec:
    constructor: Callable[..., nn.Module]
    weights: str  # torchvision weights enum member, e.g. "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    split: int  # features[:split] ends at stride 16
    channels: tuple[int, int]  # (stride 16, stride 32)


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v3_small": BackboneSpec(torchvision.models.mobilenet_v3_small,
                                       "MobileNet_V3_Small_Weights.IMAGENET1K_V1", 9, (48, 576)),
    "efficientnet_b0": BackboneSpec(torchvision.models.efficientnet_b0,
                                    "EfficientNet_B0_Weights.IMAGENET1K_V1", 6, (112, 1280)),
    "mobilenet_v2": BackboneSpec(torchvision.models.mobilenet_v2, "MobileNet_V2_Weights.IMAGENET1K_V2", 14, (96, 1280)),
}
DOWNLOAD_TIMEOUT_S = 15


class Backbone(nn.Module):
    """``forward(x) -> (stride-16 map, stride-32 map)``."""

    def __init__(self, name: str, features: nn.Sequential, with_stride32: bool = True):
        super().__init__()
        spec = BACKBONES[name]
        self.name = name
        self.channels = spec.channels
        self.stage16 = features[: spec.split]
        self.stage32 = features[spec.split:] if with_stride32 else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        c16 = self.stage16(x)
        return c16, (self.stage32(c16) if self.stage32 is not None else None)


def weights_file(name: str, value: str) -> Path:
    """The local state_dict file ``--backbone-weights`` names for backbone ``name``: the file
    itself, or the first ``<name>*.pth`` / ``*.pt`` of a folder."""
    path = Path(value).expanduser()
    if path.is_dir():
        matches = sorted(p for p in path.iterdir() if p.name.startswith(name) and p.suffix in (".pth", ".pt"))
        if not matches:
            raise CLBenchError(f"{path}: no {name}*.pth weights file in this folder")
        return matches[0]
    if not path.is_file():
        raise CLBenchError(f"{path}: backbone weights file not found")
    return path


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    if path.stat().st_size == 0:
        raise CLBenchError(f"{path}: empty file (0 bytes), not a backbone weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise CLBenchError(f"{path}: not a loadable weights file ({first_line(error)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CLBenchError(f"{path}: expected a state_dict, got {type(state).__name__}")
    return state


def imagenet_url(name: str) -> str:
    """Where torchvision publishes the backbone's ImageNet weights."""
    return torchvision.models.get_weight(BACKBONES[name].weights).url


def _download_imagenet(name: str, spec: BackboneSpec) -> nn.Module:
    """torchvision's ImageNet weights through torch.hub (its cache first, then
    the download, with a short timeout so offline use fails fast)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        state = torch.hub.load_state_dict_from_url(imagenet_url(name), map_location="cpu", check_hash=True,
                                                   weights_only=True, progress=True)
    except Exception as error:
        reason = f"{type(error).__name__}: {first_line(error, 80)}"
        raise CLBenchError(
            f"cannot download ImageNet weights for {name} from {imagenet_url(name)} ({reason}); either go online, "
            f"or pass a local file with --backbone-weights FILE (a torchvision state_dict, or a folder holding "
            f"{name}*.pth); --backbone-weights none starts from random weights"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    network = spec.constructor()
    network.load_state_dict(state, strict=True)
    return network


def build_backbone(name: str, weights: str = "none", with_stride32: bool = True) -> Backbone:
    """A registered backbone with ``weights``: ``none`` (random), ``imagenet``
    (torchvision's download or its cache), or a state_dict file (or a folder
    holding ``<name>*.pth``) for the plain torchvision constructor. Without
    ``with_stride32`` the stages after stride 16 are dropped."""
    if name not in BACKBONES:
        raise CLBenchError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    spec = BACKBONES[name]
    if weights in ("none", "", None):
        network = spec.constructor()
    elif weights == "imagenet":
        network = _download_imagenet(name, spec)
    else:
        path = weights_file(name, weights)
        network = spec.constructor()
        state = load_state_dict_file(path)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            detail = " ".join(str(error).split())[:160]
            raise CLBenchError(f"{path}: not {name} weights ({detail})") from None
    return Backbone(name, network.features, with_stride32)
