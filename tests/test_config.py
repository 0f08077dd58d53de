"""Typed configuration: YAML files, validation, command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from cl_bench.cli.train_command import train_config
from cl_bench.config import Config, load_config
from cl_bench.errors import CLBenchError
from run_bench import build_parser

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


CONFIGS = sorted(p for p in EXPERIMENTS.glob("**/*.yaml") if "grids" not in p.parts)  # grids: tests/test_grid.py


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_experiment_config_loads(path):
    assert isinstance(load_config(path), Config)


def test_default_yaml_documents_the_built_in_defaults():
    assert load_config(EXPERIMENTS / "default.yaml") == Config()


def test_unknown_keys_and_wrong_types_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    with pytest.raises(CLBenchError, match=r"bad.yaml.train: unknown key\(s\) epoch"):
        load_config(bad)
    bad.write_text("train:\n  epochs: many\n")
    with pytest.raises(CLBenchError, match="bad.yaml.train.epochs: expected int, got 'many'"):
        load_config(bad)
    bad.write_text("train: [\n")
    with pytest.raises(CLBenchError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(CLBenchError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_command_line_overrides_the_yaml():
    args = build_parser(None).parse_args([
        "--config", str(EXPERIMENTS / "challenge.yaml"), "--strategy", "ewc", "--seed", "3", "--order",
        "cls,seg,det", "--epochs", "2", "--image-size", "96", "--bn-policy", "per_task", "--det-root", "/x",
        "--set", "strategy.options.ewc_lambda=10", "--set", "train.epochs_per_task.det=5"])
    config = train_config(args)
    assert (config.strategy.name, config.run.seed, config.data.order) == ("ewc", 3, ["cls", "seg", "det"])
    assert (config.train.epochs, config.data.image_size, config.train.bn_policy) == (2, 96, "per_task")
    assert config.data.roots == {"det": "/x"} and config.data.root == "data"
    assert config.strategy.options == {"ewc_lambda": 10}
    assert config.train.epochs_per_task == {"det": 5}


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser(None).parse_args(["--help"])
    out = capsys.readouterr().out
    for option in ("--strategy", "--config", "--seed", "--order", "--epochs", "--image-size", "--data-root",
                   "--device", "--backbone-weights", "--out", "--bn-policy", "--set", "--list-strategies"):
        assert option in out


def test_a_config_can_start_from_a_base_file_and_override_keys(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  lr: 0.001\n  epochs: 7\ndata:\n  image_size: 96\n")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("base: ../base.yaml\ntrain:\n  lr: 0.0005\n")
    config = load_config(child)
    assert (config.train.lr, config.train.epochs, config.data.image_size) == (0.0005, 7, 96)
    (tmp_path / "base.yaml").write_text("base: sub/child.yaml\n")
    with pytest.raises(CLBenchError, match="makes a cycle"):
        load_config(child)
