"""Named settings (issue 29, item 1): a name outside a setting's choices is one line naming the key, the
value and the allowed names, when the config is loaded or the strategy's options resolved, before any
folder is made or data read; the command line's choice lists are the same declarations. No training."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import run_bench
from cl_bench.config import BN_POLICIES, LOGGERS, NECKS, PRECISIONS, ModelConfig, RunConfig, TrainConfig, load_config
from cl_bench.dataclass_io import choices_of, setting
from cl_bench.errors import CLBenchError
from cl_bench.model.backbones import BACKBONES  # the registry other changes add to
from cl_bench.tasks.detection import OBJECTNESS_LOSSES, DetOptions
from strategies import get_strategy
from strategies.ewc import EWC_MODES, EWCOptions
from strategies.mas import MASOptions

SMOKE = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"

MISSPELT = [  # (the arguments, the one line on stderr)
    (["--set", "tasks.det.objectness=focall"], "error: tasks.det.objectness: 'focall' is not one of focal, bce"),
    (["--set", "run.logger=tqmd"], "error: config.run.logger: 'tqmd' is not one of tqdm, text, tensorboard, none"),
    (["--set", "train.bn_policy=freez"],
     "error: config.train.bn_policy: 'freez' is not one of train, freeze_after_first, per_task"),
    (["--set", "train.precision=fp8"], "error: config.train.precision: 'fp8' is not one of fp32, bf16, fp16"),
    (["--set", "model.neck=fppn"], "error: config.model.neck: 'fppn' is not one of fpn, convbnrelu"),
    (["--strategy", "ewc", "--set", "strategy.options.mode=onlin"],
     "error: strategy.options (ewc).mode: 'onlin' is not one of separate, online"),
    (["--strategy", "mas+replay", "--set", "strategy.options.mas.mode=onlin"],
     "error: strategy.options (mas+replay).mas.mode: 'onlin' is not one of separate, online"),
    (["--set", "model.backbone=mobilenet_v3_smal"],
     f"error: config.model.backbone: 'mobilenet_v3_smal' is not one of {', '.join(sorted(BACKBONES))}"),
    (["--order", "seg,det,clss"], "error: data.order: unknown task 'clss' (known: seg, det, cls)"),
]


@pytest.fixture
def no_run_folder(monkeypatch):
    """A run that got past its checks fails the test at once instead of training."""
    from cl_bench.experiment import runner

    def reached(path):
        raise AssertionError(f"the run got as far as making its folder {path}")

    monkeypatch.setattr(runner, "check_writable", reached)


@pytest.mark.parametrize(("args", "line"), MISSPELT, ids=lambda v: v[-1] if isinstance(v, list) else None)
def test_a_misspelt_name_is_one_line_before_any_folder(tmp_path, capsys, no_run_folder, args, line):
    out = tmp_path / "out"
    code = run_bench.main(["--config", str(SMOKE), *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [line], err
    assert not out.exists()


def test_a_yaml_file_names_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {SMOKE}\nrun:\n  logger: txt\n")
    line = rf"^{re.escape(str(bad))}\.run\.logger: 'txt' is not one of tqdm, text, tensorboard, none$"
    with pytest.raises(CLBenchError, match=line):
        load_config(bad)
    bad.write_text("tasks:\n  det:\n    objectness: BCE\n")
    with pytest.raises(CLBenchError, match=r"^tasks.det.objectness: 'BCE' is not one of focal, bce$"):
        load_config(bad)


def test_strategy_modes_are_checked_when_the_options_resolve():
    for name, options, key in (("ewc", {"mode": "Online"}, "mode"), ("mas", {"mode": "separated"}, "mode"),
                               ("ewc_replay", {"ewc": {"mode": "x"}}, "ewc.mode")):
        with pytest.raises(CLBenchError, match=rf"^strategy.options \({name}\).{key}: '.*' is not one of "
                                               rf"separate, online$"):
            get_strategy(name).options(options)
    assert get_strategy("ewc").options({"mode": "online", "decay_factor": 0.9}).mode == "online"


def test_the_declarations():
    assert choices_of(RunConfig, "logger") == LOGGERS
    assert choices_of(TrainConfig, "bn_policy") == BN_POLICIES
    assert choices_of(TrainConfig, "precision") == PRECISIONS
    assert choices_of(ModelConfig, "neck") == NECKS
    assert choices_of(DetOptions, "objectness") == OBJECTNESS_LOSSES
    assert choices_of(EWCOptions, "mode") == choices_of(MASOptions, "mode") == EWC_MODES
    with pytest.raises(ValueError, match="not one of its choices"):
        setting("fp64", choices=PRECISIONS)


def _choices(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    def actions(p: argparse.ArgumentParser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from actions(sub)
            else:
                yield action

    return {action.option_strings[0]: tuple(action.choices) for action in actions(parser)
            if action.choices is not None and action.option_strings}


def test_the_command_lines_choices_are_the_declarations():
    declared = {"--bn-policy": BN_POLICIES, "--logger": LOGGERS, "--neck": NECKS,
                "--backbone": tuple(sorted(BACKBONES))}
    train = _choices(run_bench.build_parser(None))
    assert {flag: train[flag] for flag in declared} == declared
    for command in ("grid", "check-model"):
        flags = _choices(run_bench.build_parser(command))
        assert flags["--neck"] == NECKS and flags["--backbone"] == declared["--backbone"]


def test_every_declared_name_is_implemented():
    import torch

    from cl_bench.model.neck import build_neck
    from cl_bench.training.batchnorm_policy import BatchNormPolicyPlugin
    from cl_bench.training.precision import DTYPES, MixedPrecision

    assert tuple(DTYPES) == PRECISIONS
    for name in PRECISIONS:
        MixedPrecision(name, "cpu")
    for name in NECKS:
        assert isinstance(build_neck(name, (8, 16), 8, 2), torch.nn.Module)
    for name in BN_POLICIES:
        BatchNormPolicyPlugin(name)


@pytest.mark.parametrize("options, message", [
    ({"mode": "separate", "decay_factor": 0.9}, "ewc.decay_factor: 0.9 applies to mode online only (mode is separate)"),
    ({"mode": "online"}, "ewc.decay_factor: mode online needs one (e.g. 0.9)"),
])
def test_an_ewc_option_its_mode_ignores_or_needs_is_one_line(options, message):
    from strategies import get_strategy

    with pytest.raises(CLBenchError, match=re.escape(message)):
        get_strategy("ewc").options(options)
    assert get_strategy("ewc").options({"mode": "online", "decay_factor": 0.9}).decay_factor == 0.9


def test_a_mas_decay_factor_in_separate_mode_is_one_line():
    from strategies import get_strategy

    mas = get_strategy("mas")
    with pytest.raises(CLBenchError, match=re.escape("mas.decay_factor: 0.9 applies to mode online only "
                                                     "(mode is separate)")):
        mas.options({"decay_factor": 0.9})
    assert mas.options({}).decay_factor == mas.options({"decay_factor": 1}).decay_factor == 1.0  # the default
    assert mas.options({"mode": "online", "decay_factor": 0.9}).decay_factor == 0.9


@pytest.mark.parametrize("name, text, message", [
    ("", None, "a folder, not a config file"),                        # --config DIR
    ("base.yaml", b"base: .\n", "a folder, not a config file"),       # base: names its own folder
    ("bad.yaml", b"train:\n  lr: 0.1 \xff\n", "not UTF-8 text (byte"),
])
def test_a_config_that_is_a_folder_or_not_utf8_is_one_line(tmp_path, capsys, name, text, message):
    config = tmp_path / name
    if text is not None:
        config.write_bytes(text)
    assert run_bench.main(["--config", str(config), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and not (tmp_path / "out").exists()


BAD_BACKBONE = f"model.backbone: 'resnet9000' is not one of {', '.join(sorted(BACKBONES))}"


def test_a_bad_backbone_stops_run_experiment_before_any_folder(tmp_path, no_run_folder):
    """run_experiment is the path every caller shares (the CLI, tune, bench scripts, grid workers)."""
    from cl_bench.experiment.runner import run_experiment

    config = load_config(SMOKE)
    config.model.backbone, config.run.out = "resnet9000", str(tmp_path / "out")
    with pytest.raises(CLBenchError) as error:
        run_experiment(config, log=lambda _: None)
    assert str(error.value) == BAD_BACKBONE
    assert not (tmp_path / "out").exists()


def test_a_bad_backbone_in_a_tuned_yaml_is_one_line_and_no_folder(tmp_path, capsys, no_run_folder):
    setting = tmp_path / "big.yaml"
    setting.write_text(f"base: {SMOKE}\nmodel:\n  backbone: resnet9000\n")
    out = tmp_path / "tuning"
    assert run_bench.main(["tune", str(setting), "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {BAD_BACKBONE}"]
    assert not out.exists()


def test_a_bad_backbone_stops_the_grids_planning(tmp_path, capsys):
    """The planner checks it itself: grid workers make the run folder before run_experiment runs, and
    callers of plan_runs other than the CLI (bench/grid_overhead.py) build configs with apply_set alone."""
    from cl_bench.config import apply_set
    from cl_bench.grid.plan import GridSpec, plan_runs

    spec = GridSpec(["naive"], [0], [["seg", "det", "cls"]], fixed=["model.backbone=resnet9000"])
    with pytest.raises(CLBenchError) as error:
        plan_runs(spec, lambda assignments: apply_set(load_config(SMOKE), assignments))
    assert str(error.value) == BAD_BACKBONE
    out = tmp_path / "grid"
    assert run_bench.main(["grid", "--config", str(SMOKE), "--strategies", "naive", "--seeds", "0",
                           "--set", "model.backbone=resnet9000", "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {BAD_BACKBONE}"]
    assert not out.exists()
