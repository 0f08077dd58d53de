"""Memory Aware Synapses, task-aware: importances from each task's own output.

Avalanche's MASPlugin cannot take our model: it takes the norm of one output
tensor, and ours is a dict of task outputs. Importances here are
``mean over minibatches of |d/dθ mean ||f_t(x)||²|`` where ``f_t`` is task
t's output (seg logits per pixel, the det grid per cell, cls logits; the
squared L2 norm is over channels, averaged over samples and positions) on that
task's own images, computed after each experience without labels. The
penalty, the modes (``separate``: one anchor and importance per earlier
experience; ``online``: one running importance, decayed) and the checkpointed
state are EWC's (``TaskAwareEWCPlugin``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.training.utils import zerolike_params_dict
from torch.utils.data import DataLoader

from cl_bench.dataclass_io import AT_LEAST_0, PROBABILITY, setting
from cl_bench.errors import CLBenchError
from strategies.ewc import EWC_MODES, TaskAwareEWCPlugin
from strategies.registry import register


@dataclass
class MASOptions:
    # lambda 20 weighs the penalty as EWC's lambda 1e5 does on average after the 320 px recipe's seg stage
    # (importances 0.160 per weight against EWC's F 3.29e-5, bench/importance_scale.py), and beat lambda 1
    # (the smoke data's match) on the tune split (README, "Default strengths").
    mas_lambda: float = setting(20.0, allowed=AT_LEAST_0, help="weight of the MAS penalty")
    mode: str = setting("separate", choices=EWC_MODES,
                        help="EWC's modes: one anchor and importance per earlier task, or one decayed (online)")
    decay_factor: float = setting(1.0, allowed=PROBABILITY,
                                  help="online mode only: weight of the earlier importances")

    def __post_init__(self) -> None:
        if self.mode == "separate" and self.decay_factor != 1.0:  # separate mode ignores it: only the default
            raise CLBenchError(f"mas.decay_factor: {self.decay_factor} applies to mode online only (mode is separate)")


class MASPlugin(TaskAwareEWCPlugin):
    """MAS penalty ``lambda * sum_i Ω_i (θ_i - θ*_i)^2`` with output-norm importances."""

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0):
        model.eval()
        importances = zerolike_params_dict(model)
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=dataset.collate_fn, num_workers=num_workers)
        for images, targets, *_ in loader:
            optimizer.zero_grad()
            out = model(images.to(device))
            norm = sum(output_norm(out[name][rows.rows.to(device)]) for name, rows in targets.items())
            norm.backward()
            for p, imp in zip(model.parameters(), importances.values()):
                if p.grad is not None:
                    imp.data += p.grad.abs()
        for imp in importances.values():
            imp.data /= float(len(loader))
        optimizer.zero_grad()
        model.train()
        return importances


def output_norm(output: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm over channels (dim 1), averaged over samples and positions."""
    return output.pow(2).sum(dim=1).mean()


@register("mas", MASOptions, "MAS penalty on weights to which earlier tasks' outputs are sensitive")
def plugins(options: MASOptions, ctx) -> list:
    online = options.mode == "online"
    return [MASPlugin(options.mas_lambda, options.mode, options.decay_factor if online else None)]
