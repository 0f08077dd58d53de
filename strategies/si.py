"""Synaptic Intelligence: importances from the path integral of the loss during training.

Over every optimizer step ``ω -= g · Δθ``; after each experience
``Ω += max(ω / (Δ² + damping), 0)`` with Δ the change of the parameter over
the experience (a negative share would reward moving away). Penalty
``c * sum_i Ω_i (θ_i - θ*_i)^2``, θ* the weights after the last experience.
BatchNorm parameters are left out, as in Avalanche.

g, with ``path_gradient: task_loss`` (the default, as in the paper and FACIL),
is the gradient of the loss of the data being learned: ``p.grad`` after the
optimizer step (a GradScaler has unscaled it by then) less the SI penalty's
own gradient ``2 c Ω (θ - θ*)`` at the weights before the step. Only SI's
penalty is taken out: what other parts of a composed strategy add to the loss
(replay rows, DER or LwF distillation) stays in g, and after A-GEM g is the
projected gradient. ``total_loss`` takes ``p.grad`` as is, the gradient of
everything minimised, so the penalty's own pull towards θ* counts as importance.

Avalanche's SynapticIntelligencePlugin is not used: on CPU it records the
weights as ``param.detach().cpu().flatten()``, a view of the live parameter,
so Δθ is 0 and every importance is 0 (tests/test_strategies_composed.py
catches it); it also copies every parameter to the CPU three times a step and
caps importances at 0.001.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import nn

from cl_bench.dataclass_io import AT_LEAST_0, POSITIVE, setting
from cl_bench.errors import CLBenchError
from strategies.registry import register

PATH_GRADIENTS = ("task_loss", "total_loss")


@dataclass
class SIOptions:
    # c 2e4 weighs the penalty as EWC's lambda 1e5 does on average after the 320 px recipe's seg stage
    # (Ω 1.74e-4 per weight against EWC's F 3.29e-5, bench/importance_scale.py), and beat c 300 (the
    # smoke data's match) on the tune split (README, "Default strengths").
    c: float = setting(2.0e4, allowed=AT_LEAST_0, help="weight of the SI penalty")
    damping: float = setting(0.1, allowed=POSITIVE, help="ξ: keeps Ω finite for parameters that hardly moved")
    path_gradient: str = setting("task_loss", choices=PATH_GRADIENTS,
                                 help="g of ω -= g·Δθ: the task loss's gradient (paper) or p.grad with the penalty's")

    def __post_init__(self) -> None:
        if self.path_gradient not in PATH_GRADIENTS:
            raise CLBenchError(f"si.path_gradient: {self.path_gradient!r} is unknown "
                               f"(known: {', '.join(PATH_GRADIENTS)})")


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters SI protects: every trainable one outside BatchNorm layers."""
    batchnorm = {f"{name}.{p}" for name, module in model.named_modules()
                 if isinstance(module, nn.modules.batchnorm._NormBase)
                 for p, _ in module.named_parameters(recurse=False)}
    return {name: p for name, p in model.named_parameters() if p.requires_grad and name not in batchnorm}


def _copy(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in weights.items()}


class TaskAwareSIPlugin(SupervisedPlugin):
    def __init__(self, c: float, damping: float = 0.1, path_gradient: str = "task_loss"):
        super().__init__()
        self.c, self.damping, self.path_gradient = c, damping, path_gradient
        self.anchor: dict[str, torch.Tensor] = {}  # θ*
        self.importance: dict[str, torch.Tensor] = {}  # Ω
        self.path: dict[str, torch.Tensor] = {}  # ω of the current experience
        self.start: dict[str, torch.Tensor] = {}
        self.previous: dict[str, torch.Tensor] = {}  # the weights before the current step

    def before_training_exp(self, strategy, **kwargs):
        self.start = _copy(_weights(strategy.model))
        self.path = {name: torch.zeros_like(p) for name, p in self.start.items()}

    def before_training_iteration(self, strategy, **kwargs):
        self.previous = _copy(_weights(strategy.model))

    def before_backward(self, strategy, **kwargs):
        if self.importance:
            penalty = sum((self.importance[name] * (p - self.anchor[name]).pow(2)).sum()
                          for name, p in _weights(strategy.model).items())
            strategy.loss += self.c * penalty

    @torch.no_grad()
    def after_training_iteration(self, strategy, **kwargs):
        # p.grad still holds this step's gradient: the template zeroes it after before_training_iteration
        for name, p in _weights(strategy.model).items():
            if p.grad is None:
                continue
            gradient = p.grad
            if self.path_gradient == "task_loss" and name in self.importance:
                # less the penalty's gradient 2 c Ω (θ - θ*), at the weights before the step (where it was taken)
                gradient = gradient - 2 * self.c * self.importance[name] * (self.previous[name] - self.anchor[name])
            self.path[name] -= gradient * (p - self.previous[name])

    @torch.no_grad()
    def after_training_exp(self, strategy, **kwargs):
        weights = _weights(strategy.model)
        for name, p in weights.items():
            share = (self.path[name] / ((p - self.start[name]).pow(2) + self.damping)).clamp(min=0)
            self.importance[name] = self.importance.get(name, 0) + share
        self.anchor = _copy(weights)
        self.path, self.start, self.previous = {}, {}, {}

    def state_dict(self) -> dict[str, Any]:
        return {"anchor": dict(self.anchor), "importance": dict(self.importance)}

    def load_state_dict(self, state: dict[str, Any], context) -> None:
        self.anchor = {k: v.to(context.device) for k, v in state["anchor"].items()}
        self.importance = {k: v.to(context.device) for k, v in state["importance"].items()}


@register("si", SIOptions, "SI penalty on weights whose movement lowered earlier tasks' loss along the way")
def plugins(options: SIOptions, ctx) -> list:
    return [TaskAwareSIPlugin(options.c, options.damping, options.path_gradient)]
