"""SI's path integral ω -= g·Δθ with g the task loss's gradient (``path_gradient: task_loss``, the paper's)
or the total loss's, SI's own penalty included (``total_loss``): hand-computed over two SGD steps."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cl_bench.errors import CLBenchError
from strategies import StrategyContext, get_strategy
from strategies.si import TaskAwareSIPlugin

LR, C, DAMPING = 0.5, 0.25, 1.0  # 2c = 0.5
TARGET = torch.tensor([[3.0], [3.0]])


def _model(weights: list[float]) -> nn.Linear:
    """y = W x with W of shape (2, 1): fed x = [1], the outputs are the two weights themselves."""
    model = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weights).view(2, 1))
    return model


def _train_two_sgd_steps(path_gradient: str, importance: list[float] | None) -> tuple[list, list, list]:
    """One experience of two plain SGD steps on the task loss 0.5 Σ (W x - 3)², whose gradient is W - 3,
    from W = [1, 1], with Ω = ``importance`` (θ* = [1, 1]) from an earlier experience or none:
    ω at its end, the weights and Ω after it."""
    model = _model([1.0, 1.0])
    plugin = TaskAwareSIPlugin(c=C, damping=DAMPING, path_gradient=path_gradient)
    if importance is not None:
        plugin.importance = {"weight": torch.tensor(importance).view(2, 1)}
        plugin.anchor = {"weight": torch.tensor([[1.0], [1.0]])}  # θ*: the weights after the earlier experience
    strategy = SimpleNamespace(model=model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    plugin.before_training_exp(strategy)
    for _ in range(2):  # the template's order: before_training_iteration, zero_grad, backward, step, after_...
        plugin.before_training_iteration(strategy)
        optimizer.zero_grad()
        strategy.loss = 0.5 * (model(torch.ones(1, 1)).T - TARGET).pow(2).sum()
        plugin.before_backward(strategy)  # adds c Σ Ω (W - θ*)² when Ω is there
        strategy.loss.backward()
        optimizer.step()
        plugin.after_training_iteration(strategy)
    path = plugin.path["weight"].flatten().tolist()  # after_training_exp clears it
    plugin.after_training_exp(strategy)
    assert plugin.anchor["weight"].flatten().tolist() == model.weight.flatten().tolist()  # the new θ*
    return path, model.weight.flatten().tolist(), plugin.importance["weight"].flatten().tolist()


def test_task_loss_and_total_loss_paths_by_hand_with_an_active_penalty():
    # Ω = [1, 0], θ* = [1, 1]: the first weight is protected, the second is not.
    # step 1, W = [1, 1]: task gradient W - 3 = [-2, -2]; penalty gradient 2c Ω (W - θ*) = 0.5 [1, 0] [0, 0] = [0, 0]
    #   total gradient [-2, -2]; SGD: W = [1, 1] - 0.5 [-2, -2] = [2, 2], Δθ = [1, 1]
    #   ω += -g Δθ: task_loss [2, 2], total_loss [2, 2]
    # step 2, W = [2, 2]: task gradient [-1, -1]; penalty gradient 0.5 [1, 0] [1, 1] = [0.5, 0]
    #   total gradient [-0.5, -1]; SGD: W = [2, 2] - 0.5 [-0.5, -1] = [2.25, 2.5], Δθ = [0.25, 0.5]
    #   ω += -g Δθ: task_loss [1 * 0.25, 1 * 0.5] = [0.25, 0.5], total_loss [0.5 * 0.25, 1 * 0.5] = [0.125, 0.5]
    # ω: task_loss [2.25, 2.5], total_loss [2.125, 2.5]
    # Δ over the experience = [2.25, 2.5] - [1, 1] = [1.25, 1.5]; Δ² + ξ = [1.5625 + 1, 2.25 + 1] = [2.5625, 3.25]
    # Ω = [1, 0] + ω / (Δ² + ξ)
    expected = {
        "task_loss": ([2.25, 2.5], [1 + 2.25 / 2.5625, 2.5 / 3.25]),
        "total_loss": ([2.125, 2.5], [1 + 2.125 / 2.5625, 2.5 / 3.25]),
    }
    results = {name: _train_two_sgd_steps(name, importance=[1.0, 0.0]) for name in expected}
    for name, (path, importance) in expected.items():
        assert results[name][0] == pytest.approx(path, abs=1e-6), name
        assert results[name][1] == [2.25, 2.5], name  # the same steps either way: only the bookkeeping differs
        assert results[name][2] == pytest.approx(importance, abs=1e-6), name
    # the protected weight's Ω differs (the penalty's gradient is in p.grad), the unprotected one's does not
    task, total = results["task_loss"][2], results["total_loss"][2]
    assert task[0] - total[0] == pytest.approx(0.125 / 2.5625, abs=1e-6) and task[1] == total[1]


def test_task_loss_and_total_loss_paths_are_equal_on_the_first_experience():
    # no Ω yet, so no penalty: both steps follow the task gradient W - 3 alone
    # step 1: g = [-2, -2], W = [2, 2], Δθ = [1, 1], ω = [2, 2]
    # step 2: g = [-1, -1], W = [2.5, 2.5], Δθ = [0.5, 0.5], ω = [2 + 0.5, 2 + 0.5] = [2.5, 2.5]
    # Ω = ω / (Δ² + ξ) = 2.5 / (1.5² + 1) = 2.5 / 3.25
    task, total = (_train_two_sgd_steps(name, importance=None) for name in ("task_loss", "total_loss"))
    assert task == total  # ω, weights and Ω, exactly
    assert task[0] == [2.5, 2.5] and task[1] == [2.5, 2.5]
    assert task[2] == pytest.approx([2.5 / 3.25] * 2)


def test_task_loss_path_uses_the_gradient_of_the_unregularised_loss_under_adamw():
    """As FACIL computes it: a separate backward of the loss without the penalty, at the weights before each step."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    plugin = TaskAwareSIPlugin(c=3.0, damping=0.1)  # path_gradient: task_loss by default
    plugin.importance = {k: torch.rand_like(p) for k, p in model.named_parameters()}
    plugin.anchor = {k: p.detach() + 0.3 * torch.randn_like(p) for k, p in model.named_parameters()}
    strategy = SimpleNamespace(model=model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    plugin.before_training_exp(strategy)
    expected = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for _ in range(3):
        x = torch.randn(4, 3)
        task_gradient = torch.autograd.grad(model(x).pow(2).sum(), list(model.parameters()))
        before = [p.detach().clone() for p in model.parameters()]
        plugin.before_training_iteration(strategy)
        optimizer.zero_grad()
        strategy.loss = model(x).pow(2).sum()
        plugin.before_backward(strategy)
        strategy.loss.backward()
        optimizer.step()
        plugin.after_training_iteration(strategy)
        for (k, p), g, b in zip(model.named_parameters(), task_gradient, before):
            expected[k] -= g * (p.detach() - b)
    for k, value in expected.items():
        assert torch.allclose(plugin.path[k], value, rtol=1e-4, atol=1e-7), k


def test_path_gradient_option_defaults_to_task_loss_and_reaches_the_plugin():
    spec = get_strategy("si")
    context = StrategyContext({}, seed=0)
    assert spec.options({}).path_gradient == "task_loss"
    [plugin] = spec.plugins(spec.options({}), context)
    assert plugin.path_gradient == "task_loss"
    [plugin] = spec.plugins(spec.options({"path_gradient": "total_loss"}), context)
    assert plugin.path_gradient == "total_loss"
    composed = get_strategy("si+der")
    assert composed.options({"si": {"path_gradient": "total_loss"}}).si.path_gradient == "total_loss"
    with pytest.raises(CLBenchError, match=r"^strategy.options \(si\).path_gradient: 'paper' is not one of "
                                           r"task_loss, total_loss$"):
        spec.options({"path_gradient": "paper"})
