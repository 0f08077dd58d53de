"""Averaged Gradient Episodic Memory, task-aware: earlier tasks' gradient as a constraint.

Before every step the reference gradient ``r`` is the criterion's gradient on
a memory minibatch of ``per_task_per_step`` images of each earlier task, each
through its own task's loss; when the step's gradient ``g`` conflicts
(``g·r < 0``) it is projected to ``g - (g·r / r·r) r``, so that ``g·r = 0``.
The projection is Avalanche's AGEMPlugin's formula, on gradients flattened
in logical order (its ``view(-1)`` fails on channels_last gradients, the
default memory format). Its memory is not reused: it
keeps whole datasets chosen with Python's ``random`` (not checkpointable),
sets the model to train mode (undoing a frozen BatchNorm policy) and draws a
fixed total rather than a number per task; the memory here is replay's
``IndexedReplayBuffer`` (indices, checkpointed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from avalanche.training.plugins import AGEMPlugin

from cl_bench.dataclass_io import AT_LEAST_1, setting
from strategies.registry import register
from strategies.replay import IndexedReplayBuffer


@dataclass
class AGEMOptions:
    mem_size: int = setting(80, allowed=AT_LEAST_1, help="images kept in memory, split evenly over earlier tasks")
    per_task_per_step: int = setting(10, allowed=AT_LEAST_1,
                                     help="memory images per earlier task per step (the rule: <= 10)")


def _flat_gradient(model: torch.nn.Module, device: torch.device) -> torch.Tensor:
    """Every parameter's gradient in logical (NCHW) order, zeros where there is none."""
    return torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel(), device=device)
                      for p in model.parameters()])


class TaskAwareAGEMPlugin(AGEMPlugin):
    def __init__(self, mem_size: int = 80, per_task_per_step: int = 10, seed: int = 0):
        super().__init__(patterns_per_experience=0, sample_size=0)  # Avalanche's own memory stays unused
        self.storage_policy = IndexedReplayBuffer(mem_size, seed)
        self.per_task_per_step = per_task_per_step

    def before_training_iteration(self, strategy, **kwargs):
        if not self.buffers:
            return
        strategy.optimizer.zero_grad()
        images, targets, *_ = self.sample_from_memory()
        loss = strategy._criterion(strategy.model(images.to(strategy.device)), targets.to(strategy.device))
        loss.backward()
        self.reference_gradients = _flat_gradient(strategy.model, strategy.device)
        strategy.optimizer.zero_grad()

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if not self.buffers:
            return
        current, reference = _flat_gradient(strategy.model, strategy.device), self.reference_gradients
        dot = torch.dot(current, reference)
        if dot >= 0:
            return
        projected = current - reference * (dot / torch.dot(reference, reference))
        offset = 0
        for p in strategy.model.parameters():
            if p.grad is not None:
                p.grad.copy_(projected[offset: offset + p.numel()].view(p.shape))
            offset += p.numel()

    def sample_from_memory(self):
        """``per_task_per_step`` random images of each earlier task, collated as one minibatch."""
        samples = []
        for dataset in self.buffers:
            picked = torch.randperm(len(dataset))[: self.per_task_per_step]
            samples.extend(dataset[i] for i in picked.tolist())
        return self.buffers[0].collate_fn(samples)

    def after_training_exp(self, strategy, **kwargs):
        self.storage_policy.post_adapt(strategy, strategy.experience)
        self._sync_buffers()

    def _sync_buffers(self) -> None:
        self.buffers = [group.buffer for group in self.storage_policy.buffer_groups.values()]

    def state_dict(self) -> dict[str, Any]:
        return self.storage_policy.state_dict()

    def load_state_dict(self, state: dict[str, Any], context) -> None:
        self.storage_policy.load_state_dict(state, context.datasets)
        self._sync_buffers()


@register("agem", AGEMOptions, "project each step's gradient when it would raise earlier tasks' memory loss",
          buffer=True)
def plugins(options: AGEMOptions, ctx) -> list:
    return [TaskAwareAGEMPlugin(options.mem_size, options.per_task_per_step, ctx.seed)]
