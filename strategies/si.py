"""Synaptic Intelligence: importances from the path integral of the loss during training.

Over every optimizer step ``ω -= g · Δθ`` (g the gradient of the loss being
minimised, penalties included); after each experience
``Ω += max(ω / (Δ² + damping), 0)`` with Δ the change of the parameter over
the experience (a negative share would reward moving away). Penalty
``c * sum_i Ω_i (θ_i - θ*_i)^2``, θ* the weights after the last experience.
BatchNorm parameters are left out, as in Avalanche.

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
from strategies.registry import register


@dataclass
class SIOptions:
    # c 2e4 weighs the penalty as EWC's lambda 1e5 does on average after the 320 px recipe's seg stage
    # (Ω 1.74e-4 per weight against EWC's F 3.29e-5, bench/importance_scale.py), and beat c 300 (the
    # smoke data's match) on the tune split (README, "Default strengths").
    c: float = setting(2.0e4, allowed=AT_LEAST_0)
    damping: float = setting(0.1, allowed=POSITIVE)  # ξ, keeps Ω finite for parameters that hardly moved


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters SI protects: every trainable one outside BatchNorm layers."""
    batchnorm = {f"{name}.{p}" for name, module in model.named_modules()
                 if isinstance(module, nn.modules.batchnorm._NormBase)
                 for p, _ in module.named_parameters(recurse=False)}
    return {name: p for name, p in model.named_parameters() if p.requires_grad and name not in batchnorm}


def _copy(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in weights.items()}


class TaskAwareSIPlugin(SupervisedPlugin):
    def __init__(self, c: float, damping: float = 0.1):
        super().__init__()
        self.c, self.damping = c, damping
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
        for name, p in _weights(strategy.model).items():
            if p.grad is not None:
                self.path[name] -= p.grad * (p - self.previous[name])

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
    return [TaskAwareSIPlugin(options.c, options.damping)]
