"""Per-stage learning-rate scales of the model's parts (train.part_lr_per_task): a part at 0 is frozen for
its stage (weights and BatchNorm statistics), the others learn, and every part learns again after it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cl_bench.config import PartRates, apply_set, load_config
from cl_bench.errors import CLBenchError
from cl_bench.experiment.run_id import run_id_for
from cl_bench.experiment.runner import assemble
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
