"""merge: the weights after a stage are those it started from plus alpha times its change; the first
stage is kept as trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cl_bench.config import apply_set, load_config
from cl_bench.experiment.runner import assemble
from strategies import get_strategy
from strategies.merge import interpolate

SMOKE = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"


def test_interpolate_moves_floats_by_alpha_and_keeps_counters():
    start = {"w": torch.tensor([0.0, 1.0]), "n": torch.tensor(3)}
    trained = {"w": torch.tensor([2.0, -1.0]), "n": torch.tensor(7)}
    merged = interpolate(start, trained, 0.25)
    assert torch.equal(merged["w"], torch.tensor([0.5, 0.5])) and merged["n"].item() == 7


def _states(tmp_path: Path, strategy: str, options: list[str]) -> list[dict[str, torch.Tensor]]:
    config = apply_set(load_config(SMOKE), [f"strategy.name={strategy}", *options])
    config.train.epochs, config.run.out, config.run.logger = 1, str(tmp_path / strategy), "none"
    spec = get_strategy(strategy)
    run = assemble(config, spec, spec.resolve(config.strategy.options), strategy, tmp_path, log=lambda _: None)
    states = []
    for stage in run.stages[:2]:  # seg, then det
        run.strategy.train_epochs = 1
        run.strategy.train(stage.experience, eval_streams=[], reset_optimizer_state=True)
        states.append({key: value.clone() for key, value in run.model.state_dict().items()})
    return states


def test_a_merged_stage_keeps_alpha_of_its_change(tmp_path):
    plain = _states(tmp_path, "naive", [])
    merged = _states(tmp_path, "merge", ["strategy.options.alpha_per_task={det: 0.25}"])
    for key, value in plain[0].items():
        assert torch.equal(merged[0][key], value)  # the first stage as trained (same seed, same stage)
    expected = interpolate(plain[0], plain[1], 0.25)
    floats = [key for key, value in expected.items() if value.is_floating_point()]
    assert any(not torch.allclose(plain[1][key], plain[0][key]) for key in floats)
    for key in floats:
        assert merged[1][key] == pytest.approx(expected[key], abs=1e-5), key
