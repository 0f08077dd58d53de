"""Composed strategies (``a+b``) and the task-aware MAS, SI, A-GEM and DER++:
composition rules, hand-checked importances, projection and stored outputs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cl_bench.config import Config, DataConfig, load_config
from cl_bench.errors import CLBenchError
from cl_bench.experiment.runner import run_experiment
from cl_bench.model import build_model
from cl_bench.tasks import build_tasks
from cl_bench.tasks.batch import MultiTaskTargets, TaskTargets
from run_bench import main as run_bench
from scenarios.benchmark import build_benchmark
from strategies import STRATEGIES, NoOptions, StrategyContext, get_strategy, register
from strategies.agem import TaskAwareAGEMPlugin
from strategies.der import DERPlugin
from strategies.mas import MASPlugin
from strategies.si import TaskAwareSIPlugin

SMOKE = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"
MATRICES = ("matrix_mIoU.csv", "matrix_pixel_acc.csv", "matrix_mAP.csv", "matrix_mAP50.csv", "matrix_top1.csv",
            "matrix_top5.csv")


# ---- composition ------------------------------------------------------------------

def test_ewc_plus_replay_gives_the_matrices_of_ewc_replay(tmp_path):
    runs = {}
    for name in ("ewc_replay", "ewc+replay"):
        config = load_config(SMOKE)
        config.strategy.name, config.run.out, config.train.epochs = name, str(tmp_path), 1
        config.data.synthetic_train = 16
        runs[name] = run_experiment(config, log=lambda _: None).run_dir
    assert runs["ewc_replay"].name.startswith("ewc_replay_seg-det-cls_s0_")
    for matrix in MATRICES:
        assert (runs["ewc_replay"] / matrix).read_bytes() == (runs["ewc+replay"] / matrix).read_bytes(), matrix


@pytest.mark.parametrize("name, message", [
    ("replay+der", "replay and der each keep a replay buffer; use one"),
    ("der+agem", "der and agem each keep a replay buffer; use one"),
    ("ewc+joint", "'joint' does not compose"),
    ("single_task+lwf", "'single_task' does not compose"),
    ("ewc_replay+lwf", "'ewc_replay' does not compose"),
    ("ewc+mas+ewc", "ewc appears more than once"),
    ("ewc+magic", "unknown strategy 'magic'"),
])
def test_incompatible_compositions_are_one_line_errors(tmp_path, capsys, name, message):
    assert run_bench(["--strategy", name, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # refused before any work


def test_composed_options_are_per_part():
    spec = get_strategy("mas+der+lwf")
    options = spec.options({"mas": {"mas_lambda": 3}, "der": {"beta": 0}})
    assert (options.mas.mas_lambda, options.der.beta, options.der.alpha, options.lwf.temperature) == \
        (3.0, 0.0, 0.1, 2.0)
    with pytest.raises(CLBenchError, match=r"strategy.options \(mas\+der\+lwf\).der: unknown key\(s\) lambda"):
        spec.options({"der": {"lambda": 1}})
    plugins = spec.plugins(options, StrategyContext(build_tasks(Config().tasks), seed=0))
    assert [type(p).__name__ for p in plugins] == ["MASPlugin", "DERPlugin", "MultiTaskLwFPlugin"]


def test_parts_sharing_a_plugin_class_are_refused():
    class Shared:
        def state_dict(self):
            return {}

    for name in ("toy_a", "toy_b"):
        register(name, NoOptions, "toy")(lambda options, ctx: [Shared()])
    try:
        spec = get_strategy("toy_a+toy_b")
        with pytest.raises(CLBenchError, match="its parts share a plugin class"):
            spec.plugins(spec.options({}), StrategyContext({}, 0))
    finally:
        del STRATEGIES["toy_a"], STRATEGIES["toy_b"]


# ---- hand-checked pieces on tiny models --------------------------------------------

class TwoTaskLinear(nn.Module):
    """Outputs ``{"cls": A x, "seg": B x}``."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 2, bias=False), nn.Linear(3, 4, bias=False)

    def forward(self, x):
        return {"cls": self.a(x), "seg": self.b(x)}


class Rows:
    """Samples ``(x, task, 0)``; collates like ``collate_multitask``."""

    def __init__(self, x: torch.Tensor, tasks: list[str]):
        self.x, self.tasks = x, tasks

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.tasks[i], 0

    def collate_fn(self, samples):
        x = torch.stack([s[0] for s in samples])
        by_task = {}
        for name in dict.fromkeys(s[1] for s in samples):
            rows = torch.tensor([i for i, s in enumerate(samples) if s[1] == name])
            by_task[name] = TaskTargets(rows, rows, torch.zeros(len(rows), 2), (1, 1), {})
        return x, MultiTaskTargets(by_task, len(samples)), torch.zeros(len(samples), dtype=torch.int64)


def test_mas_importances_equal_the_hand_formula():
    torch.manual_seed(0)
    model = TwoTaskLinear()
    x = torch.randn(6, 3)
    dataset = Rows(x, ["cls", "cls", "seg", "cls", "seg", "seg"])  # batches of 3: rows 0-2 and 3-5
    plugin = MASPlugin(1.0)
    importances = plugin.compute_importances(model, None, torch.optim.SGD(model.parameters(), lr=0.1), dataset,
                                             "cpu", batch_size=3)
    # d/dW mean_r ||W x_r||^2 = 2 / n sum_r (W x_r) x_r^T over the rows of W's task
    expected = {"a.weight": torch.zeros(2, 3), "b.weight": torch.zeros(4, 3)}
    for batch in (range(0, 3), range(3, 6)):
        for key, weight, task in (("a.weight", model.a.weight, "cls"), ("b.weight", model.b.weight, "seg")):
            rows = [r for r in batch if dataset.tasks[r] == task]
            grad = sum(2 * torch.outer(weight @ x[r], x[r]) for r in rows) / len(rows)
            expected[key] += grad.abs().detach() / 2
    for key, value in expected.items():
        assert torch.allclose(importances[key].data, value, atol=1e-6), key


def _strategy(model, exp=0, **more):
    return SimpleNamespace(model=model, device="cpu", clock=SimpleNamespace(train_exp_counter=exp), **more)


def test_si_path_integral_equals_the_hand_computation_over_two_sgd_steps():
    torch.manual_seed(0)
    model, lr, damping, c = nn.Linear(3, 2), 0.1, 0.01, 5.0
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    plugin = TaskAwareSIPlugin(c=c, damping=damping)
    strategy = _strategy(model)
    start = {k: p.detach().clone() for k, p in model.named_parameters()}
    path = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    plugin.before_training_exp(strategy)
    for _ in range(2):
        plugin.before_training_iteration(strategy)
        optimizer.zero_grad()
        strategy.loss = model(torch.randn(4, 3)).pow(2).sum()
        plugin.before_backward(strategy)
        strategy.loss.backward()
        before = {k: p.detach().clone() for k, p in model.named_parameters()}
        optimizer.step()
        for k, p in model.named_parameters():
            path[k] -= p.grad * (p.detach() - before[k])  # -g . Δθ (= lr g² for plain SGD)
        plugin.after_training_iteration(strategy)
    plugin.after_training_exp(strategy)
    for k, p in model.named_parameters():
        expected = (path[k] / ((p.detach() - start[k]) ** 2 + damping)).clamp(min=0)
        assert torch.allclose(plugin.importance[k], expected, rtol=1e-5), k
        assert expected.abs().sum() > 0
    # the penalty of the next experience: c * sum Ω (θ - θ*)²
    with torch.no_grad():
        for p in model.parameters():
            p += 0.5
    strategy = _strategy(model, exp=1, loss=torch.zeros(()))
    plugin.before_backward(strategy)
    penalty = sum((plugin.importance[k] * 0.25).sum() for k, _ in model.named_parameters())
    assert strategy.loss.item() == pytest.approx(c * penalty.item(), rel=1e-5)


def test_si_leaves_batchnorm_parameters_out():
    from strategies.si import _weights

    assert set(_weights(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)))) == {"0.weight", "0.bias"}


@pytest.mark.parametrize("conflict", [True, False])
def test_agem_projection_keeps_a_non_negative_dot_product_and_equals_the_formula(conflict):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    plugin = TaskAwareAGEMPlugin()
    plugin.buffers = [Rows(torch.randn(2, 3), ["seg", "seg"])]
    reference = torch.randn(sum(p.numel() for p in model.parameters()))
    gradient = (-1 if conflict else 1) * reference + 0.3 * torch.randn_like(reference)
    plugin.reference_gradients = reference
    offset = 0
    for p in model.parameters():
        p.grad = gradient[offset: offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    plugin.after_backward(_strategy(model))
    projected = torch.cat([p.grad.flatten() for p in model.parameters()])
    dot = gradient @ reference
    assert (dot < 0) == conflict
    expected = gradient - (dot / (reference @ reference)) * reference if conflict else gradient
    assert torch.allclose(projected, expected, atol=1e-6)
    assert projected @ reference >= -1e-5


def test_agem_projects_channels_last_gradients_in_logical_order():
    torch.manual_seed(0)
    model = nn.Conv2d(2, 3, 3).to(memory_format=torch.channels_last)  # the runs' default memory format
    plugin = TaskAwareAGEMPlugin()
    plugin.buffers = [Rows(torch.randn(2, 3), ["seg", "seg"])]
    plugin.reference_gradients = torch.randn(sum(p.numel() for p in model.parameters()))
    model(torch.randn(1, 2, 5, 5).to(memory_format=torch.channels_last)).sum().backward()
    assert not model.weight.grad.is_contiguous()
    gradient = torch.cat([p.grad.flatten() for p in model.parameters()])
    if gradient @ plugin.reference_gradients > 0:
        plugin.reference_gradients = -plugin.reference_gradients
    reference = plugin.reference_gradients
    plugin.after_backward(_strategy(model))
    expected = gradient - (gradient @ reference / (reference @ reference)) * reference
    assert torch.allclose(torch.cat([p.grad.flatten() for p in model.parameters()]), expected, atol=1e-6)


def test_agem_reference_gradient_is_the_criterion_gradient_on_the_memory_sample():
    torch.manual_seed(0)
    model = TwoTaskLinear()
    plugin = TaskAwareAGEMPlugin(per_task_per_step=2)
    plugin.buffers = [Rows(torch.randn(5, 3), ["cls"] * 5), Rows(torch.randn(5, 3), ["seg"] * 5)]

    def criterion(out, targets):
        return sum(out[name][rows.rows].sum() for name, rows in targets.items())

    strategy = _strategy(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), _criterion=criterion)
    torch.manual_seed(1)
    plugin.before_training_iteration(strategy)
    torch.manual_seed(1)
    x, targets, _ = plugin.sample_from_memory()
    assert {name: len(rows) for name, rows in targets.items()} == {"cls": 2, "seg": 2}
    model.zero_grad()
    criterion(model(x), targets).backward()
    assert torch.equal(plugin.reference_gradients, torch.cat([p.grad.flatten() for p in model.parameters()]))


# ---- DER on the unified model --------------------------------------------------------

@pytest.fixture(scope="module")
def small(synthetic_root):
    config = Config(DataConfig(root=str(synthetic_root), image_size=32))
    benchmark = build_benchmark(config)
    tasks = build_tasks(config.tasks)
    torch.manual_seed(0)
    return benchmark, tasks, build_model(config.model, benchmark.classes, tasks)


def _recomputed(plugin: DERPlugin, model, exp: int) -> torch.Tensor:
    model.eval()
    dataset, task = plugin.buffers[exp], plugin.tasks[plugin.task_of[exp]]
    with torch.no_grad():
        return torch.cat([task.stored_output(model(dataset[i][0][None])[task.name]) for i in range(len(dataset))])


def test_der_stores_the_outputs_of_storage_time_and_replays_at_most_10_per_task(small):
    benchmark, tasks, model = small
    plugin = DERPlugin(tasks, mem_size=16, per_task_per_step=10)
    strategy = SimpleNamespace(model=model.train(), device="cpu", eval_mb_size=4,
                               experience=benchmark.train_stream[0])
    plugin.after_training_exp(strategy)
    assert model.training  # left as it was
    assert plugin.stored[0].shape == (12, len(benchmark.classes["seg"]), 2, 2)  # 32 px seg logits on a 2 x 2 grid
    assert torch.allclose(plugin.stored[0], _recomputed(plugin, model, 0), atol=1e-5)
    seg_then = plugin.stored[0].clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    strategy.experience = benchmark.train_stream[1]
    plugin.after_training_exp(strategy)
    assert len(plugin.buffers[0]) == len(plugin.buffers[1]) == 8  # 16 split over two experiences
    assert torch.equal(plugin.stored[0][:8], seg_then[:8])  # the seg outputs of storage time, kept
    assert not torch.allclose(plugin.stored[0][:8], _recomputed(plugin, model, 0), atol=1e-3)  # the model moved
    assert torch.allclose(plugin.stored[1], _recomputed(plugin, model, 1), atol=1e-5)  # det grid outputs
    # one step of the third experience: the current 8 images, then <= 10 of each earlier task
    current = benchmark.train_stream[2].dataset
    images, targets, labels = current.collate_fn([current[i] for i in range(8)])
    strategy.mbatch = [images, targets, labels]
    plugin.before_forward(strategy)
    memory, stored = plugin.memory
    assert {name: len(rows) for name, rows in memory.items()} == {"seg": 8, "det": 8}
    assert len(strategy.mbatch[0]) == len(strategy.mbatch[2]) == 24
    assert sorted(torch.cat([rows.rows for rows in memory.values()]).tolist()) == list(range(8, 24))
    strategy.mb_output = model(strategy.mbatch[0])
    strategy.loss = torch.zeros(())
    plugin.beta = 0.0
    plugin.before_backward(strategy)
    expected = sum(tasks[n].output_matching(strategy.mb_output[n][rows.rows], stored[n]) for n, rows in memory.items())
    assert strategy.loss.item() == pytest.approx(plugin.alpha * expected.item()) and expected.item() > 0


def test_der_replays_at_most_per_task_per_step_images_of_each_earlier_task(small):
    benchmark, tasks, model = small
    plugin = DERPlugin(tasks, mem_size=60, per_task_per_step=10)
    strategy = SimpleNamespace(model=model, device="cpu", eval_mb_size=4, experience=benchmark.train_stream[0])
    plugin.after_training_exp(strategy)
    strategy.experience = benchmark.train_stream[1]
    plugin.after_training_exp(strategy)
    assert [len(d) for d in plugin.buffers.values()] == [12, 12]  # every training image: 12 of each task, under 30
    current = benchmark.train_stream[2].dataset
    strategy.mbatch = list(current.collate_fn([current[i] for i in range(4)]))
    plugin.before_forward(strategy)
    assert {name: len(rows) for name, rows in plugin.memory[0].items()} == {"seg": 10, "det": 10}
