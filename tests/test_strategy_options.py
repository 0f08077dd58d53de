"""Typed strategy options (issue 29, item 2): ``strategy.options`` resolves once into one typed options
dataclass per part, in one layout alone or composed (``strategy.options.der.alpha`` for ``der`` as for
``mas+der``; the flat ``strategy.options.alpha`` still works alone); a bad key or value is one line naming
it; ``--list-strategies`` prints every option's default, allowed values and help from its declaration; the
run id hashes the resolved options away from their defaults (one form however they are written), and every
finished reference run keeps its run id and is taken for finished. No training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import run_bench
from cl_bench.cli.train_command import apply_set, list_strategies
from cl_bench.config import Config, load_config
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.experiment import runner
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
    assert spec.canonical(nested.strategy.options) == {"alpha": 0.2}  # config.yaml's layout, the flat one
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


@pytest.mark.parametrize(("strategy", "at_default"), [
    ("der", ["strategy.options.alpha=0.1"]),
    ("der", ["strategy.options.der.alpha=0.1"]),
    ("der", ["strategy.options.der={alpha: 0.1, beta: 0.5, mem_size: 80, per_task_per_step: 10}"]),
    ("mas+der", ["strategy.options.der.alpha=0.1"]),
    ("mas+der", ["strategy.options.der.alpha=0.1", "strategy.options.mas={mas_lambda: 20, mode: separate}"]),
    ("ewc_replay", ["strategy.options.ewc.ewc_lambda=100000", "strategy.options.replay.mem_size=80"]),
    ("ewc", ["strategy.options.decay_factor=null"]),
])
def test_an_option_written_at_its_default_is_the_run_that_leaves_it_out(strategy, at_default):
    config = configured(strategy, *at_default)
    assert get_strategy(strategy).canonical(config.strategy.options) == {}
    assert run_id_for(config) == run_id_for(configured(strategy))


def test_a_value_away_from_the_default_is_another_run_however_it_is_written():
    default = run_id_for(configured("der"))
    changed = {run_id_for(configured("der", f"strategy.options.{key}={value}"))
               for key in ("alpha", "der.alpha") for value in ("0.2", "2e-1")}
    assert len(changed) == 1 and default not in changed
    assert run_id_for(configured("der", "strategy.options.alpha=1")) == run_id_for(
        configured("der", "strategy.options.alpha=1.0"))  # the declared type's value: an int is its float
    assert run_id_for(configured("der", "strategy.options.alpha=0.3")) not in changed | {default}
    composed = run_id_for(configured("mas+der"))
    one = run_id_for(configured("mas+der", "strategy.options.der.alpha=0.2"))
    both = run_id_for(configured("mas+der", "strategy.options.der.alpha=0.2", "strategy.options.mas.mas_lambda=1"))
    assert len({composed, one, both}) == 3
    assert get_strategy("mas+der").canonical({"der": {"alpha": 0.2, "beta": 0.5}, "mas": {"mode": "separate"}}) == {
        "der": {"alpha": 0.2}}  # config.yaml's layout: per part, only what differs from the defaults


# the tuning runs of results/reference/recipe320 hashed their options as written: those that wrote an option at
# its default (the same run as leaving it out now) or a float option as an int (hashed as its float now) have
# another id today; the runs of results/reference itself wrote none of either
RECIPE = REFERENCE / "recipe320"
RECIPE_RUNS = sorted(p.name for p in RECIPE.iterdir() if (p / "config.yaml").is_file())
RECIPE_NEW_IDS = {
    "mas_seg-det-cls_s0_c0aaa939": "mas_lambda: 1, an int",
    "mas_seg-det-cls_s0_f966ddf3": "mas_lambda: 20, the default",
    "si_seg-det-cls_s0_67d46cd3": "c: 300, an int",
    "si_seg-det-cls_s0_c075d0e4": "c: 20000.0, the default",
}


def test_the_tuning_runs_keep_their_ids_but_those_written_at_a_default_or_as_an_int():
    changed = {run for run in RECIPE_RUNS if run_id_for(load_config(RECIPE / run / "config.yaml")) != run}
    assert changed == set(RECIPE_NEW_IDS)


@pytest.mark.parametrize(("run", "assignments"), [
    ("si_seg-det-cls_s1_ed644032", []),  # an option away from its default
    ("mas+der_seg-det-cls_s3_63b10f78", []),  # a composition at its defaults
    ("mas+der_seg-det-cls_s3_63b10f78", ["strategy.options.der.alpha=0.1", "strategy.options.mas.mas_lambda=20"]),
    ("der_seg-det-cls_s2_9063c217", ["strategy.options.der.beta=0.5"]),
])
def test_a_copy_of_a_reference_run_is_skipped_as_finished_without_training(tmp_path, monkeypatch, run, assignments):
    """The run machinery (run_experiment) takes a copied reference run folder for the run its config.yaml
    describes, also when that config writes options at their defaults; nothing is trained or rewritten."""
    def no_training(*_):
        raise AssertionError("the run was assembled for training")

    monkeypatch.setattr(runner, "assemble", no_training)
    shutil.copytree(REFERENCE / run, tmp_path / run, ignore=shutil.ignore_patterns("*.pt"))
    before = {p.name: p.read_bytes() for p in (tmp_path / run).iterdir()}
    config = apply_set(load_config(tmp_path / run / "config.yaml"), [f"run.out={tmp_path}", *assignments])
    lines: list[str] = []
    outcome = runner.run_experiment(config, log=lines.append)
    assert outcome.skipped and outcome.run_id == run and outcome.run_dir == tmp_path / run
    assert outcome.summary == json.loads((REFERENCE / run / "summary.json").read_text())
    assert lines[-1].startswith(f"run {run} already finished with this config: skipped")
    assert {p.name: p.read_bytes() for p in (tmp_path / run).iterdir() if p.name in before} == before
    assert [row.split(",")[0] for row in (tmp_path / "runs.csv").read_text().splitlines()[1:]] == [run]
