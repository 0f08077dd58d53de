"""The multi-task template: Avalanche's SupervisedTemplate for the unified model."""

from __future__ import annotations

from avalanche.training.templates import SupervisedTemplate


class MultiTaskTemplate(SupervisedTemplate):
    """SupervisedTemplate for the unified model: minibatches are
    ``[images, MultiTaskTargets, task_labels]`` (targets move to the device
    with ``.to``), the model returns one dict of task outputs and the
    criterion (``MultiTaskCriterion``) routes each sample to its task's loss."""

    def forward(self):
        return self.model(self.mb_x)

    def make_optimizer(self, reset_optimizer_state: bool = False, **kwargs):
        """The unified model never grows, so the optimizer keeps its parameter
        groups (Avalanche's rebuild supports a single group); its state is
        cleared for a fresh start when asked."""
        if reset_optimizer_state:
            self.optimizer.state.clear()
