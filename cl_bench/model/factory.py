"""Your own model: ``model.factory: "package.module:function"`` names a callable that receives the
head layout (``HeadLayout``: the tasks in head order, their classes and channels) and the keyword
arguments ``model.factory_options``, and returns an ``nn.Module`` whose ``forward(x)`` returns ONE
tensor ``[B, layout.channels, h, w]``; ``FactoryModel`` wraps it in the harness's forward contract
(``cl_bench/model/outputs.py``). The weights file records the factory string and options, so eval.py
rebuilds the same model (the factory's module must be importable there too)."""

from __future__ import annotations

import importlib
from typing import Any, Callable

import torch
from torch import nn

from cl_bench.config import ModelConfig
from cl_bench.errors import CLBenchError, first_line
from cl_bench.model.outputs import TaskOutputModel
from cl_bench.tasks import Task

PARTS = ("backbone", "neck", "head")  # the submodules of a factory's module the harness looks for


def import_factory(spec: str) -> Callable[..., nn.Module]:
    """The callable ``spec`` (``package.module:function``) names; any problem is one CLBenchError line."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CLBenchError(f"model.factory '{spec}': expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        hint = " (is its folder on PYTHONPATH?)" if error.name and module_name.startswith(error.name) else ""
        raise CLBenchError(f"model.factory '{spec}': cannot import {module_name}: {first_line(error)}{hint}") from None
    except Exception as error:  # the module's own code failed while importing
        raise CLBenchError(f"model.factory '{spec}': importing {module_name} failed "
                           f"({type(error).__name__}: {first_line(error)})") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CLBenchError(f"model.factory '{spec}': {module_name} has no {attribute}")
        target = getattr(target, part)
    if not callable(target):
        raise CLBenchError(f"model.factory '{spec}': {attribute} is a {type(target).__name__}, not a callable")
    return target


class FactoryModel(TaskOutputModel):
    """A factory's module (``net``, its state_dict keys prefixed ``net.``) under the forward contract.
    ``backbone`` / ``neck`` / ``head``: the module's own submodules of those names, when it has them
    (the backbone learning-rate scale and check-model read them); ``backbone`` is empty otherwise."""

    def __init__(self, config: ModelConfig, classes: dict[str, list[str]], tasks: dict[str, Task]):
        super().__init__(config, classes, tasks)
        factory = import_factory(config.factory)
        try:
            net = factory(self.layout, **config.factory_options)
        except CLBenchError:
            raise
        except Exception as error:
            raise CLBenchError(f"model.factory '{config.factory}' failed: {type(error).__name__}: "
                               f"{first_line(error)}") from None
        if not isinstance(net, nn.Module):
            raise CLBenchError(f"model.factory '{config.factory}' returned a {type(net).__name__}, not an nn.Module")
        self.net = net

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.net(x)
        if not isinstance(raw, torch.Tensor) or raw.dim() != 4 or raw.shape[1] != self.layout.channels:
            got = tuple(raw.shape) if isinstance(raw, torch.Tensor) else type(raw).__name__
            raise CLBenchError(f"model.factory '{self.config.factory}': forward must return ONE tensor "
                               f"[B, {self.layout.channels}, h, w] (the head layout's channels), not {got}")
        return raw

    @property
    def backbone(self) -> nn.Module:
        return self.part("backbone") or nn.Identity()

    @property
    def neck(self) -> nn.Module | None:
        return self.part("neck")

    @property
    def head(self) -> nn.Module | None:
        return self.part("head")

    def part(self, name: str) -> nn.Module | None:
        module = getattr(self.net, name, None)
        return module if isinstance(module, nn.Module) else None

    def parts(self) -> dict[str, nn.Module]:
        return {name: module for name in PARTS if (module := self.part(name)) is not None}


def describe_model(config: ModelConfig) -> str:
    """One phrase for the model a config builds (eval.py's and check-model's first line)."""
    if config.factory:
        options = ", ".join(f"{k}={v!r}" for k, v in config.factory_options.items())
        return f"factory {config.factory}" + (f" ({options})" if options else "")
    return (f"{config.backbone} (weights: {config.backbone_weights}) + {config.neck} neck "
            f"({config.neck_channels} ch) + {config.head_layers}-layer head ({config.head_channels} ch)")
