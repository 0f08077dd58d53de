"""Typed strategy options (issue 29, item 2): ``strategy.options`` resolves once into one typed options
dataclass per part, in one layout alone or composed (``strategy.options.der.alpha`` for ``der`` as for
``mas+der``; the flat ``strategy.options.alpha`` still works alone); a bad key or value is one line naming
it; ``--list-strategies`` prints every option's default, allowed values and help from its declaration; and
every finished reference run keeps its run id. No training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import run_bench
from cl_bench.cli.train_command import apply_set, list_strategies
from cl_bench.config import Config, load_config
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.experiment.run_id import finished_with, resolved_options, run_id_for
from strategies import STRATEGIES, get_strategy
from strategies.der import DEROptions
from strategies.mas import MASOptions

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"
REFERENCE = ROOT / "results" / "reference"
REFERENCE_RUNS = sorted(p.name for p in REFERENCE.iterdir() if (p / "config.yaml").is_file())


def configured(strategy: str, *assignments: str) -> Config:
    config = Config()
    config.strategy.name = strategy
    return apply_set(config, list(assignments))


def test_der_alone_nested_and_flat_resolve_to_the_same_options_and_run_id():
    nested = configured("der", "strategy.options.der.alpha=0.2")
    flat = configured("der", "strategy.options.alpha=0.2")
    spec = get_strategy("der")
    assert spec.resolve(nested.strategy.options) == spec.resolve(flat.strategy.options) == {
        "der": DEROptions(alpha=0.2)}
    assert spec.resolve(nested.strategy.options)["der"].beta == 0.5  # defaults filled in
    assert spec.written(nested.strategy.options) == {"alpha": 0.2}  # config.yaml's layout, the flat one
    assert run_id_for(nested) == run_id_for(flat) != run_id_for(configured("der"))
    assert resolved_options(nested) == resolved_options(flat)


def test_both_layouts_at_once_merge_and_a_key_set_twice_differently_is_one_line():
    spec = get_strategy("der")
    assert spec.resolve({"beta": 0.0, "der": {"alpha": 0.2}}) == {"der": DEROptions(alpha=0.2, beta=0.0)}
    with pytest.raises(CLBenchError) as error:
        spec.resolve({"alpha": 0.3, "der": {"alpha": 0.2}})
    assert str(error.value) == "strategy.options (der).alpha: set twice, as der.alpha: 0.2 and as alpha: 0.3"


def test_mas_der_takes_the_same_nested_key():
    config = configured("mas+der", "strategy.options.der.alpha=0.2")
    resolved = get_strategy("mas+der").resolve(config.strategy.options)
    assert resolved == {"mas": MASOptions(), "der": DEROptions(alpha=0.2)}
    assert list(resolved) == ["mas", "der"]  # the parts in the order written
    assert run_id_for(config) != run_id_for(configured("mas+der"))


def test_an_alias_takes_its_parts_nested():
    resolved = get_strategy("ewc_replay").resolve({"ewc": {"ewc_lambda": 1.0}})
    assert resolved["ewc"].ewc_lambda == 1.0 and resolved["replay"].mem_size == 80


@pytest.mark.parametrize(("strategy", "options", "line"), [
    ("der", {"der": {"alpa": 0.2}},
     "strategy.options (der): unknown key(s) alpa (known: alpha, beta, mem_size, per_task_per_step)"),
    ("der", {"alpha": -1}, "strategy.options (der).alpha: -1.0 is out of range (allowed: >= 0)"),
    ("der", {"der": {"alpha": "big"}}, "strategy.options (der).alpha: expected float, got 'big'"),
    ("mas+der", {"der": {"alpha": -1}}, "strategy.options (mas+der).der.alpha: -1.0 is out of range (allowed: >= 0)"),
    ("mas+der", {"alpha": 0.2}, "strategy.options (mas+der): unknown key(s) alpha (known: der, mas)"),
    ("si", {"si": {"path_gradient": "total"}},
     "strategy.options (si).path_gradient: 'total' is not one of task_loss, total_loss"),
])
def test_a_bad_key_or_value_is_one_line_naming_it(strategy, options, line):
    with pytest.raises(CLBenchError) as error:
        get_strategy(strategy).resolve(options)
    assert str(error.value) == line


def test_a_bad_nested_value_on_the_command_line_is_one_line_before_any_folder(tmp_path, capsys):
    out = tmp_path / "out"
    code = run_bench.main(["--config", str(SMOKE), "--strategy", "der", "--set", "strategy.options.der.alpha=-1",
                           "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [
        "error: strategy.options (der).alpha: -1.0 is out of range (allowed: >= 0)"], err
    assert not out.exists()


def test_list_strategies_prints_every_option_with_its_default_allowed_values_and_help(capsys):
    assert run_bench.main(["--list-strategies"]) == 0
    text = capsys.readouterr().out
    assert text.strip() == list_strategies()
    assert "alpha = 0.1 (float, >= 0): weight of matching the stored outputs (MSE)" in text
    assert "mode = 'separate' (str, one of separate | online): " in text
    assert "path_gradient = 'task_loss' (str, one of task_loss | total_loss): " in text
    assert "ewc.ewc_lambda = 100000 (float, >= 0): weight of the EWC penalty" in text  # an alias: per part
    for spec in STRATEGIES.values():  # every option declares its help
        for part in spec.members:
            for name, field in part.options_type.__dataclass_fields__.items():
                assert field.metadata.get("help"), f"{part.name}.{name} has no help"


@pytest.mark.parametrize("run", REFERENCE_RUNS)
def test_every_reference_run_keeps_its_run_id(tmp_path, run):
    copy = tmp_path / run
    shutil.copytree(REFERENCE / run, copy, ignore=shutil.ignore_patterns("*.pt", "*.csv", "*.png", "*.txt"))
    config = load_config(copy / "config.yaml")
    assert run_id_for(config) == run
    if (copy / "summary.json").is_file():  # and its folder is taken for this run, finished
        config_text = yaml.safe_dump(to_dict(config), sort_keys=False)
        assert finished_with(copy, config_text, resolved_options(config))


def test_a_reference_run_written_nested_is_the_same_run():
    run = "der_seg-det-cls_s1_c70d1b7d"
    config = load_config(REFERENCE / run / "config.yaml")
    config.strategy.options = {"der": {}}
    assert run_id_for(config) == run
