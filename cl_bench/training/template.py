"""The multi-task template: Avalanche's SupervisedTemplate for the unified model."""

from __future__ import annotations

import torch
from avalanche.training.templates import SupervisedTemplate

from cl_bench.training.precision import MixedPrecision


class MultiTaskTemplate(SupervisedTemplate):
    """SupervisedTemplate for the unified model: minibatches are
    ``[images, MultiTaskTargets, task_labels]`` (targets move to the device
    with ``.to``), the model returns one dict of task outputs and the
    criterion (``MultiTaskCriterion``) routes each sample to its task's loss.

    ``precision`` (fp32 | bf16 | fp16) autocasts the forward pass; outputs come
    back as float32, so every loss is computed in float32. ``channels_last``
    feeds images in that memory format (the model is converted by the caller).
    """

    def __init__(self, *, precision: str = "fp32", channels_last: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.precision = MixedPrecision(precision, self.device)
        self.channels_last = channels_last

    def forward(self):
        images = self.mb_x
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self.precision.autocast():
            outputs = self.model(images)
        return {name: output.float() for name, output in outputs.items()}

    def backward(self):
        self.precision.backward(self.loss, retain_graph=self.retain_graph)

    def optimizer_step(self):
        self.precision.step(self.optimizer)

    def make_optimizer(self, reset_optimizer_state: bool = False, **kwargs):
        """The unified model never grows, so the optimizer keeps its parameter
        groups (Avalanche's rebuild supports a single group); its state is
        cleared for a fresh start when asked."""
        if reset_optimizer_state:
            self.optimizer.state.clear()
