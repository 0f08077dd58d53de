"""Per-stage learning-rate scales of the model's parts (train.part_lr_per_task): a part at 0 is frozen for
its stage (weights and BatchNorm statistics), the others learn, and every part learns again after it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cl_bench.config import ModelConfig, PartRates, apply_set, load_config
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.experiment.run_id import run_id_for
from cl_bench.experiment.runner import assemble
from cl_bench.model import build_model
from cl_bench.rules import setting_key
from cl_bench.tasks import build_tasks
from cl_bench.training.lr_schedule import parameter_groups
from cl_bench.training.part_rates import PartRatesPlugin
from strategies import get_strategy

SMOKE = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"


def test_part_rates_are_read_per_task_and_checked():
    config = apply_set(load_config(SMOKE), ["train.part_lr_per_task={detection: {backbone: 0}, cls: {neck: 0.5}}"])
    assert config.train.part_lr_per_task == {"det": PartRates(backbone=0.0), "cls": PartRates(neck=0.5)}
    with pytest.raises(CLBenchError, match=r"train.part_lr_per_task.det: unknown key\(s\) trunk"):
        apply_set(load_config(SMOKE), ["train.part_lr_per_task={det: {trunk: 0}}"])
    with pytest.raises(CLBenchError, match=r"train.part_lr_per_task.det.head: -1.0 is out of range"):
        apply_set(load_config(SMOKE), ["train.part_lr_per_task={det: {head: -1}}"])


def test_runs_without_part_rates_keep_their_ids():
    config = load_config(SMOKE)
    assert run_id_for(config) == run_id_for(apply_set(config, ["train.part_lr_per_task={}"]))
    assert run_id_for(config) != run_id_for(apply_set(config, ["train.part_lr_per_task={det: {backbone: 0}}"]))


def test_a_frozen_part_keeps_its_weights_and_statistics_while_the_others_learn(tmp_path):
    config = apply_set(load_config(SMOKE), ["train.part_lr_per_task={det: {backbone: 0}, cls: {backbone: 0, neck: 0}}"])
    config.train.epochs, config.run.out, config.run.logger = 1, str(tmp_path), "none"
    spec = get_strategy("naive")
    run = assemble(config, spec, spec.resolve({}), "frozen", tmp_path, log=lambda _: None)
    states = []
    for stage in run.stages:
        run.strategy.train_epochs = 1
        run.strategy.train(stage.experience, eval_streams=[], reset_optimizer_state=True)
        states.append({key: value.clone() for key, value in run.model.state_dict().items()})

    def same(part: str, a: int, b: int) -> bool:  # weights and BatchNorm statistics
        return all(torch.equal(states[a][k], states[b][k]) for k in states[a] if k.startswith(f"{part}."))

    assert same("backbone", 0, 2) and same("neck", 1, 2)
    assert not same("neck", 0, 1) and not same("head", 0, 1) and not same("head", 1, 2)
    assert all(p.requires_grad for p in run.model.parameters())  # every part learns again after its stage


def test_a_stage_restarting_from_the_initial_weights_trains_every_part_at_its_default():
    classes = {"seg": [f"s{i}" for i in range(3)], "det": ["a", "b"], "cls": ["x", "y"]}
    model = build_model(ModelConfig(), classes, build_tasks())
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.1), lr=1.0)
    plugin = PartRatesPlugin({"seg": PartRates(backbone=0.0)})
    strategy = SimpleNamespace(model=model, optimizer=optimizer, experience=SimpleNamespace(task_name="seg"))
    plugin.restart()  # as each single_task stage: the task alone, as usual
    plugin.before_training_exp(strategy)
    assert [g["lr_scale"] for g in optimizer.param_groups] == [0.1, 1.0, 1.0]
    assert all(p.requires_grad for p in model.parameters())
    plugin.after_training_exp(strategy)
    plugin.before_training_exp(strategy)  # a stage that continues: the rates apply
    assert [g["lr_scale"] for g in optimizer.param_groups] == [0.0, 1.0, 1.0]
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_a_run_with_part_rates_has_the_plain_single_task_reference():
    plain = load_config(SMOKE)
    frozen = apply_set(plain, ["train.part_lr_per_task={det: {backbone: 0}}", "strategy.name=der"])
    assert setting_key(to_dict(plain)) == setting_key(to_dict(frozen))

