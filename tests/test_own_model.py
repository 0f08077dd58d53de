"""Bring your own model (docs/own-model.md): ``model.factory`` names a callable that builds the
network from the head layout; a strategy trains it, export copies it, eval.py rebuilds it from the
weights file (importing the factory) and reproduces the run's final metrics, check-model reports on it.

``make_model`` below is the factory the tests name: ``tests.test_own_model:make_model`` (``tests`` is a
package; the repository root is on sys.path in pytest and, as the folder of eval.py, in its subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from cl_bench.config import Config, ModelConfig, load_config, result_settings
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.model import FactoryModel, HeadLayout, build_model
from cl_bench.model.challenge_rules import check_model
from cl_bench.tasks import build_tasks

REPO = Path(__file__).resolve().parents[1]
FACTORY = "tests.test_own_model:make_model"


class TinyNet(nn.Module):
    """Four stride-2 convs to the stride-16 grid, then a 2-layer head to every task's channels."""

    def __init__(self, layout: HeadLayout, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(4):
            layers += [nn.Conv2d(3 if index == 0 else width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width),
                       nn.ReLU()]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, layout.channels, 1))
        with torch.no_grad():
            self.head[-1].bias.copy_(layout.initial_bias())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def make_model(layout: HeadLayout, width: int = 16) -> nn.Module:
    return TinyNet(layout, width)


def not_a_module(layout: HeadLayout) -> str:
    return "a string"


def two_outputs(layout: HeadLayout) -> nn.Module:
    class TwoOutputs(nn.Module):
        def forward(self, x):
            return x, x

    return TwoOutputs()


def _model(factory: str = FACTORY, **options) -> FactoryModel:
    config = Config()
    tasks = build_tasks(config.tasks)
    classes = {name: tasks[name].placeholder_classes() for name in config.data.order}
    return build_model(ModelConfig(factory=factory, factory_options=options), classes, tasks)


def test_the_factory_gets_the_head_layout_and_keeps_the_forward_contract():
    m = _model(width=8).eval()
    assert isinstance(m, FactoryModel)
    assert list(m.layout.tasks) == ["det", "seg", "cls"] and m.layout.channels == 15 + 21 + 10
    assert m.layout.tasks["seg"].slice == slice(15, 36) and m.layout.tasks["det"].num_classes == 10
    x = torch.randn(2, 3, 64, 96)
    out = m(x)
    assert out["det"].shape == (2, 15, 4, 6) and out["seg"].shape == (2, 21, 16, 24) and out["cls"].shape == (2, 10)
    raw = m.forward_raw(x)
    assert torch.equal(out["det"], raw[:, :15])
    assert all(key.startswith("net.") for key in m.state_dict())
    assert m.backbone is m.net.backbone and m.head is m.net.head and m.neck is None
    counts = m.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in m.parameters()) == counts["backbone"] + counts["head"]


def test_the_empty_factory_leaves_run_ids_as_they_were():
    settings = result_settings(to_dict(Config()))
    assert "factory" not in settings["model"] and "factory_options" not in settings["model"]
    own = Config()
    own.model.factory = FACTORY
    assert result_settings(to_dict(own))["model"]["factory"] == FACTORY


@pytest.mark.parametrize(("factory", "message"), [
    ("tests.test_own_model", "is not 'package.module:function'"),
    ("tests.no_such_module:make_model", "model.factory 'tests.no_such_module:make_model': cannot import"),
    ("tests.test_own_model:no_such", "model.factory 'tests.test_own_model:no_such': tests.test_own_model has no"),
    ("tests.test_own_model:not_a_module", "returned a str, not an nn.Module"),
])
def test_bad_factories_are_one_line_errors(factory, message):
    with pytest.raises(CLBenchError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _model(factory)


def test_check_model_reports_what_it_can_see():
    checks = {c.name: c for c in check_model(_model(), torch.device("cpu"), latency=False)}
    assert checks["parameters"].passed and checks["head layers"].value == "2" and checks["head layers"].passed
    assert checks["head single branch"].passed
    assert checks["neck"].status == "INFO" and "no `neck`" in checks["neck"].value
    assert checks["one output tensor"].passed and checks["one output tensor"].value.startswith("[1, 46, 4, 4]")
    two = {c.name: c for c in check_model(_model("tests.test_own_model:two_outputs"), torch.device("cpu"),
                                          latency=False)}
    assert two["head layers"].status == "INFO" and two["head single branch"].status == "INFO"
    assert two["one output tensor"].passed is False and "ONE tensor" in two["one output tensor"].value


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})})


def test_a_strategy_trains_exports_and_eval_py_reproduces_an_own_model(synthetic_root, tmp_path):
    from cl_bench.experiment.runner import run_experiment
    from run_bench import main as run_bench

    config = load_config(str(REPO / "experiments" / "smoke.yaml"))
    config.data.synthetic, config.data.root = False, str(synthetic_root)
    config.model.factory, config.model.factory_options = FACTORY, {"width": 16}
    config.train.epochs, config.train.batch_size = 1, 4
    config.strategy.name = "mas+der"
    config.run.out, config.run.logger = str(tmp_path / "runs"), "none"
    outcome = run_experiment(config, log=lambda _: None)
    payload = torch.load(outcome.run_dir / "model.pt", weights_only=True)
    assert payload["model"]["factory"] == FACTORY and payload["model"]["factory_options"] == {"width": 16}

    best = tmp_path / "best.pt"
    assert run_bench(["export", "--run", outcome.run_id, "--results", config.run.out, "--out", str(best)]) == 0
    card = json.loads((tmp_path / "best.card.json").read_text())
    statuses = {c["name"]: c["status"] for c in card["constraints"]["checks"]}
    assert statuses["parameters"] == "PASS" and statuses["neck"] == "INFO"

    # the report names the factory where it would name the backbone: its runs table and its model line
    from cl_bench.report.collect import load_results
    from cl_bench.report.markdown import setup_section

    assert list(pd.read_csv(Path(config.run.out) / "runs.csv")["backbone"]) == [f"factory:{FACTORY}"]
    results = load_results(config.run.out)
    assert results.warnings == [] and list(results.runs["backbone"]) == [f"factory:{FACTORY}"]
    assert f"- **Model**: factory:{FACTORY} (the user's own model; width=16);" in setup_section(results, None)

    result = _run("eval.py", "--weights", str(best), "--data_root", str(synthetic_root), "--json",
                  str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    assert f"factory {FACTORY}" in result.stdout
    evaluated = json.loads((tmp_path / "m.json").read_text())["metrics"]
    final = _final_metrics(outcome.run_dir)
    assert set(final) == {"det", "seg", "cls"} and {"mAP", "mIoU", "top1"} <= {m for v in final.values() for m in v}
    for task, metrics in final.items():
        for metric, value in metrics.items():
            assert evaluated[task][metric] == pytest.approx(value, abs=1e-6), (task, metric)

    config_file = tmp_path / "own.yaml"
    config_file.write_text(f"model:\n  factory: {FACTORY}\n  factory_options: {{width: 16}}\n")
    checked = _run("run_bench.py", "check-model", "--config", str(config_file), "--no-latency")
    assert checked.returncode == 0, checked.stderr
    assert f"model: factory {FACTORY} (width=16)" in checked.stdout
    assert "PASS  head layers" in checked.stdout and "INFO  neck" in checked.stdout
    assert "PASS  one output tensor" in checked.stdout


def _final_metrics(run_dir: Path) -> dict[str, dict[str, float]]:
    """Each task's metrics after the last stage, from the run's metrics.csv."""
    import pandas as pd

    table = pd.read_csv(run_dir / "metrics.csv")
    last = table[table["train_exp"] == table["train_exp"].max()]
    return {task: dict(zip(rows["metric"], rows["value"])) for task, rows in last.groupby("eval_task")}


def test_eval_py_names_a_factory_it_cannot_import(synthetic_root, tmp_path, capsys):
    from cl_bench.cli.eval_command import main as eval_main  # eval.py's main, in-process (the script: above)
    from cl_bench.model.weights_file import save_weights

    config = Config()
    model = _model()
    path = save_weights(model, tmp_path / "w.pt", 64, config.tasks)
    payload = torch.load(path, weights_only=True)
    for factory, says in (("tests.no_such_module:make_model", "cannot import tests.no_such_module"),
                          ("tests.test_own_model:no_such", "tests.test_own_model has no no_such")):
        payload["model"]["factory"] = factory
        torch.save(payload, tmp_path / "bad.pt")
        assert eval_main(["--weights", str(tmp_path / "bad.pt"), "--data_root", str(synthetic_root)]) == 1
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and factory in lines[0] and says in lines[0], err
