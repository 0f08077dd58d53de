"""The unified model: backbone -> neck -> ONE head of 2-3 layers whose single
output tensor on the stride-16 grid carries every task's channels, in the
registry's head layout (det: cx, cy, w, h, conf, C_det logits; then seg:
C_seg; then cls: C_cls)."""

from __future__ import annotations

import torch
from torch import fx, nn
from torchvision.ops.misc import Conv2dNormActivation

from cl_bench.config import ModelConfig
from cl_bench.errors import CLBenchError
from cl_bench.model.backbones import build_backbone
from cl_bench.model.factory import FactoryModel
from cl_bench.model.neck import build_neck
from cl_bench.model.outputs import TaskOutputModel
from cl_bench.tasks import Task


class UnifiedHead(nn.Sequential):
    """2 or 3 layers in one chain: (1 or 2) 3x3 ConvBNReLU, then a 1x1 conv to every task's channels."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, layers: int = 3):
        if layers not in (2, 3):
            raise CLBenchError(f"model.head_layers: the head has exactly 2 or 3 layers, not {layers}")
        blocks: list[nn.Module] = [Conv2dNormActivation(in_channels, hidden, 3)]
        if layers == 3:
            blocks.append(Conv2dNormActivation(hidden, hidden, 3))
        blocks.append(nn.Conv2d(hidden, out_channels, 1))
        super().__init__(*blocks)


def head_layer_count(head: nn.Module) -> int:
    """Layers with weights (conv or linear) in the head."""
    return sum(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) for m in head.modules())


def is_single_branch(head: nn.Module) -> bool:
    """True when the traced head is one chain: every operation feeds exactly one
    other and the head returns ONE tensor."""
    graph = fx.symbolic_trace(head).graph
    for node in graph.nodes:
        if node.op == "output":
            return isinstance(node.args[0], fx.Node)
        if len(node.users) != 1:
            return False
    return False


class UnifiedModel(TaskOutputModel):
    """``forward(x)`` returns a dict view of the one head output, one entry per
    task in ``classes``: ``det`` [B, 5+C_det, H/16, W/16], ``seg`` [B, C_seg, H/s, W/s]
    (upsampled), ``cls`` [B, C_cls]."""

    def __init__(self, config: ModelConfig, classes: dict[str, list[str]], tasks: dict[str, Task]):
        super().__init__(config, classes, tasks)
        self.backbone = build_backbone(config.backbone, config.backbone_weights,
                                       with_stride32=config.neck == "fpn")
        self.neck = build_neck(config.neck, self.backbone.channels, config.neck_channels, config.neck_layers)
        self.head = UnifiedHead(config.neck_channels, config.head_channels, self.layout.channels, config.head_layers)
        self._init_output_bias()
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = config.bn_momentum

    def _init_output_bias(self) -> None:
        with torch.no_grad():
            self.head[-1].bias.copy_(self.layout.initial_bias())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(*self.backbone(x))

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The single head output tensor [B, channels, H/16, W/16]."""
        return self.head(self.features(x))

    def parts(self) -> dict[str, nn.Module]:
        return {"backbone": self.backbone, "neck": self.neck, "head": self.head}


def build_model(config: ModelConfig, classes: dict[str, list[str]], tasks: dict[str, Task]) -> TaskOutputModel:
    """The one place a model is built: ``model.factory``'s when set, else the built-in one."""
    if config.factory:
        return FactoryModel(config, classes, tasks)
    return UnifiedModel(config, classes, tasks)
