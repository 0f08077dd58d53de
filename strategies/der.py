"""Dark Experience Replay (DER / DER++), task-aware.

After each experience the buffer (replay's ``IndexedReplayBuffer``: dataset
indices, ``mem_size`` images split evenly over the experiences) keeps, with
each new image, the model's output on it at that moment: evaluation mode, the
image without augmentation (the one replayed, so spatial outputs stay
aligned), reduced by the task's ``stored_output`` (seg logits pooled to the
stride-16 grid, the det grid output, cls logits). Every step appends
``per_task_per_step`` of them per earlier task to the minibatch (one forward
pass) and adds ``alpha * sum_t output_matching_t`` (MSE to the stored outputs)
and, for DER++ (``beta`` > 0), ``beta *`` their label loss.

Avalanche's DER is a whole template for classification (class-balanced
logits, one cross-entropy), not reusable with our criterion and dict outputs.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch.utils.data import DataLoader

from cl_bench.dataclass_io import AT_LEAST_0, AT_LEAST_1, setting
from cl_bench.tasks import Task
from cl_bench.tasks.batch import MultiTaskTargets
from strategies.registry import register
from strategies.replay import IndexedReplayBuffer

log = logging.getLogger(__name__)


@dataclass
class DEROptions:
    # alpha: weight of the output-matching term (Avalanche's DER default; bench/strength_sweep.py);
    # beta: weight of the replayed images' label loss (DER++; Avalanche's default); beta 0 is DER
    alpha: float = setting(0.1, allowed=AT_LEAST_0, help="weight of matching the stored outputs (MSE)")
    beta: float = setting(0.5, allowed=AT_LEAST_0,
                          help="weight of the replayed images' label loss (0: DER, > 0: DER++)")
    mem_size: int = setting(80, allowed=AT_LEAST_1, help="images kept in memory, split evenly over earlier tasks")
    per_task_per_step: int = setting(10, allowed=AT_LEAST_1,
                                     help="replayed images per earlier task per step (the rule: <= 10)")


class DERPlugin(SupervisedPlugin):
    def __init__(self, tasks: dict[str, Task], alpha: float = 0.1, beta: float = 0.5, mem_size: int = 80,
                 per_task_per_step: int = 10, seed: int = 0):
        super().__init__()
        self.tasks, self.alpha, self.beta = tasks, alpha, beta
        self.per_task_per_step = per_task_per_step
        self.storage_policy = IndexedReplayBuffer(mem_size, seed)
        self.stored: dict[int, torch.Tensor] = {}  # experience -> outputs of its first images in buffer order
        self.task_of: dict[int, str] = {}
        self.buffers: dict[int, Any] = {}  # experience -> its images in the buffer, without augmentation
        self.memory: tuple[MultiTaskTargets, dict[str, torch.Tensor]] | None = None  # this step's replayed rows

    def _sync_buffers(self) -> None:
        self.buffers = {exp: group.buffer.eval() for exp, group in self.storage_policy.buffer_groups.items()}

    def before_forward(self, strategy, **kwargs):
        if not self.buffers:
            return
        samples, stored = [], {}
        for exp, dataset in self.buffers.items():
            picked = torch.randperm(len(dataset))[: self.per_task_per_step]
            samples.extend(dataset[i] for i in picked.tolist())
            stored[self.task_of[exp]] = self.stored[exp][picked.to(self.stored[exp].device)]
        images, targets, labels = dataset.collate_fn(samples)[:3]
        offset = len(strategy.mbatch[0])
        targets = MultiTaskTargets({name: dataclasses.replace(rows, rows=rows.rows + offset)
                                    for name, rows in targets.to(strategy.device).items()}, len(samples))
        strategy.mbatch[0] = torch.cat([strategy.mbatch[0], images.to(strategy.device)])
        strategy.mbatch[-1] = torch.cat([strategy.mbatch[-1], labels.to(strategy.mbatch[-1].device)])
        self.memory = targets, stored

    def before_backward(self, strategy, **kwargs):
        if self.memory is None:
            return
        targets, stored = self.memory
        out = strategy.mb_output
        matching = sum(self.tasks[name].output_matching(out[name][rows.rows], stored[name].to(out[name].device))
                       for name, rows in targets.items())
        strategy.loss += self.alpha * matching
        if self.beta:
            criterion = strategy._criterion
            current = criterion.last_terms
            strategy.loss += self.beta * criterion(out, targets)
            criterion.last_terms = current | criterion.last_terms  # the loss log records both
        self.memory = None

    def after_training_exp(self, strategy, **kwargs):
        exp = len(self.storage_policy.buffer_groups)
        self.storage_policy.post_adapt(strategy, strategy.experience)
        self._sync_buffers()
        self.task_of[exp] = strategy.experience.task_name
        self.stored[exp] = self.outputs(strategy.model, self.buffers[exp], strategy.device, strategy.eval_mb_size)
        megabytes = sum(t.numel() * t.element_size() for t in self.stored.values()) / 2**20
        log.info(f"der: {sum(len(d) for d in self.buffers.values())} images in the buffer (indices); their stored "
                 f"outputs take {megabytes:.2f} MB")

    @torch.no_grad()
    def outputs(self, model: torch.nn.Module, dataset, device, batch_size: int) -> torch.Tensor:
        """The model's stored outputs on ``dataset`` (one task's images), in evaluation mode."""
        was_training = model.training
        model.eval()
        stored = []
        for images, targets, *_ in DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate_fn):
            out = model(images.to(device))
            stored.extend(self.tasks[name].stored_output(out[name][rows.rows.to(device)])
                          for name, rows in targets.items())
        model.train(was_training)
        return torch.cat(stored)

    def state_dict(self) -> dict[str, Any]:
        return {**self.storage_policy.state_dict(), "stored": {k: v.cpu() for k, v in self.stored.items()},
                "task_of": dict(self.task_of)}

    def load_state_dict(self, state: dict[str, Any], context) -> None:
        self.storage_policy.load_state_dict(state, context.datasets)
        self._sync_buffers()
        self.stored = {int(k): v.to(context.device) for k, v in state["stored"].items()}
        self.task_of = {int(k): v for k, v in state["task_of"].items()}


@register("der", DEROptions, "replay earlier tasks' images with the outputs the model gave them (DER++)",
          buffer=True)
def plugins(options: DEROptions, ctx) -> list:
    return [DERPlugin(ctx.tasks, options.alpha, options.beta, options.mem_size, options.per_task_per_step,
                      ctx.seed)]
