"""eval.py (the grader's command) and check-model."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cl_bench.cli.eval_command import main as eval_main
from cl_bench.config import Config, DataConfig, ModelConfig, RunConfig, StrategyConfig, TrainConfig
from cl_bench.evaluation import evaluate_task
from cl_bench.experiment.runner import run_experiment
from cl_bench.model.weights_file import load_weights
from cl_bench.tasks import build_tasks
from run_bench import main as run_bench
from scenarios.benchmark import build_benchmark

REPO = Path(__file__).resolve().parents[1]


def run_eval(*args: str, script: bool = False) -> subprocess.CompletedProcess:
    """eval.py with ``args``: in this process (its ``main``, as the script calls it), or as the script itself."""
    if script:
        return subprocess.run([sys.executable, "eval.py", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = eval_main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return subprocess.CompletedProcess(["eval.py", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """A model trained briefly on every task in turn, saved by its run; with its in-process metrics."""
    config = Config(DataConfig(root=str(synthetic_root), image_size=64), ModelConfig(),
                    train=TrainConfig(epochs=3, batch_size=4), strategy=StrategyConfig("naive"),
                    run=RunConfig(out=str(tmp_path_factory.mktemp("runs")), logger="none"))
    outcome = run_experiment(config, log=lambda _: None)
    path = outcome.run_dir / "model.pt"
    loaded = load_weights(path)
    benchmark = build_benchmark(config)
    tasks = build_tasks(config.tasks)
    metrics = {name: evaluate_task(loaded.model, tasks[name], benchmark.test_stream[i].dataset,
                                   benchmark.splits["test"][name]) for i, name in enumerate(benchmark.tasks)}
    return path, metrics


def test_eval_prints_the_in_process_metrics(trained, synthetic_root, tmp_path):
    path, metrics = trained
    result = run_eval("--weights", str(path), "--data_root", str(synthetic_root), "--tasks", "all",
                      "--json", str(tmp_path / "m.json"), script=True)
    assert result.returncode == 0, result.stderr
    assert f"mAP {metrics['det']['mAP']:.4f}" in result.stdout
    assert f"mIoU {metrics['seg']['mIoU']:.4f}" in result.stdout
    assert f"Top-1 {metrics['cls']['top1']:.4f}" in result.stdout
    written = json.loads((tmp_path / "m.json").read_text())["metrics"]
    for name in metrics:
        assert written[name] == pytest.approx(metrics[name], abs=1e-12)


def test_eval_one_task_any_split_and_long_names(trained, synthetic_root, tmp_path):
    import shutil

    path, metrics = trained
    shutil.copytree(synthetic_root / "imagenette_160" / "val", tmp_path / "imagenette-160" / "test")
    result = run_eval("--weights", str(path), "--dataroot", str(tmp_path), "--tasks", "classification",
                      "--split", "test")
    assert result.returncode == 0, result.stderr
    assert f"Top-1 {metrics['cls']['top1']:.4f}" in result.stdout and "mIoU" not in result.stdout


@pytest.mark.parametrize("problem", ["missing", "corrupt", "foreign", "mismatched"])
def test_bad_weights_files_are_one_line_errors(trained, synthetic_root, tmp_path, problem):
    path = tmp_path / "w.pt"
    if problem == "corrupt":
        path.write_bytes(trained[0].read_bytes()[:1000])
    elif problem == "foreign":
        torch.save({"weight": torch.zeros(3)}, path)
    elif problem == "mismatched":
        payload = torch.load(trained[0], weights_only=True)
        payload["classes"]["cls"] = payload["classes"]["cls"][:5]
        torch.save(payload, path)
    result = run_eval("--weights", str(path), "--data_root", str(synthetic_root))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(trained, synthetic_root, tmp_path, value):
    """NaN or inf weights would print plausible-looking metrics: one line naming the file and a tensor."""
    payload = torch.load(trained[0], weights_only=True)
    key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    broken = payload["state_dict"][key].contiguous().clone()
    broken.view(-1)[1] = value
    payload["state_dict"][key] = broken
    path = tmp_path / "w.pt"
    torch.save(payload, path)
    result = run_eval("--weights", str(path), "--data_root", str(synthetic_root))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: tensor state_dict.{key} holds non-finite values (NaN or inf); these weights cannot be "
        "evaluated"], result.stderr


@pytest.mark.parametrize(("size", "says"), [(0, "is 0, not"), (-64, "is -64, not"), (None, "is missing")])
def test_bad_embedded_image_size_is_one_line(trained, synthetic_root, tmp_path, size, says):
    payload = torch.load(trained[0], weights_only=True)
    if size is None:
        del payload["preprocess"]["image_size"]
    else:
        payload["preprocess"]["image_size"] = size
    path = tmp_path / "w.pt"
    torch.save(payload, path)
    result = run_eval("--weights", str(path), "--data_root", str(synthetic_root))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: preprocess.image_size {says}"), result.stderr


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_eval_batch_size_below_one_is_an_argparse_error(trained, synthetic_root, value):
    result = run_eval("--weights", str(trained[0]), "--data_root", str(synthetic_root), "--batch-size", value)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("eval.py: error: argument --batch-size: ") and value in last, result.stderr
    assert "Traceback" not in result.stderr


def test_weights_file_loads_with_weights_only(trained):
    payload = torch.load(trained[0], weights_only=True)
    assert {"format", "model", "tasks", "classes", "preprocess", "state_dict"} <= set(payload)
    assert load_weights(trained[0]).image_size == 64


def test_check_model_passes_the_challenge_rules(capsys):
    assert run_bench(["check-model"]) == 0
    out = capsys.readouterr().out
    assert "PASS  parameters" in out and "PASS  head layers         3" in out
    assert "PASS  head single branch  yes" in out and "PASS  neck                1 FPN layer" in out
    assert "latency 512x512" in out and "ms on" in out
    assert "PASS  one forward pass    yes" in out


def test_check_model_fails_per_task_batchnorm_statistics(tmp_path, capsys):
    """Per-task BN statistics need a forward pass per task: not the challenge's one branch emitting all three."""
    config = tmp_path / "per_task.yaml"
    config.write_text("train:\n  bn_policy: per_task\n")
    assert run_bench(["check-model", "--config", str(config), "--no-latency"]) == 1
    assert "FAIL  one forward pass    no: BatchNorm statistics per task" in capsys.readouterr().out


def _det_copy(synthetic_root: Path, tmp_path: Path, edit) -> Path:
    """A copy of the synthetic data whose det val annotation file ``edit`` changes (in place)."""
    import shutil

    root = Path(shutil.copytree(synthetic_root, tmp_path / "data"))
    labels = root / "mini_coco_det" / "val" / "labels.json"
    data = json.loads(labels.read_text())
    edit(data)
    labels.write_text(json.dumps(data))
    return root


def test_eval_ignores_detection_categories_beyond_the_models(trained, synthetic_root, tmp_path):
    """Detection keeps a selection of the data's categories (the most frequent in train): eval.py
    ignores the others' annotations as training does, and the metric is the one without them."""
    path, metrics = trained

    def add_zebra(data):
        data["categories"].append({"id": 24, "name": "zebra", "supercategory": None})
        first = data["annotations"][0]
        data["annotations"].append({**first, "id": 1000, "category_id": 24})  # on an annotated object

    root = _det_copy(synthetic_root, tmp_path, add_zebra)
    result = run_eval("--weights", str(path), "--data_root", str(root), "--tasks", "det",
                      "--json", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    labels = root / "mini_coco_det" / "val" / "labels.json"
    info = [line for line in result.stdout.splitlines() if line.startswith("info:")]
    assert info == [f"info: detection: 1 category of {labels} is not among the model's 10 classes; "
                    "its 1 annotation is ignored, as in training"]
    assert f"mAP {metrics['det']['mAP']:.4f}" in result.stdout
    written = json.loads((tmp_path / "m.json").read_text())["metrics"]["det"]
    assert written == pytest.approx(metrics["det"], abs=1e-12)


def test_eval_refuses_detection_data_without_one_of_the_models_classes(trained, synthetic_root, tmp_path):
    path, _ = trained

    def drop_handbag(data):
        (gone,) = [c["id"] for c in data["categories"] if c["name"] == "handbag"]
        data["categories"] = [c for c in data["categories"] if c["id"] != gone]
        data["annotations"] = [a for a in data["annotations"] if a["category_id"] != gone]

    root = _det_copy(synthetic_root, tmp_path, drop_handbag)
    result = run_eval("--weights", str(path), "--data_root", str(root), "--tasks", "det")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    labels = root / "mini_coco_det" / "val" / "labels.json"
    assert lines == [f"error: detection classes of {labels} differ from the model's: missing handbag; extra none "
                     "(--allow-class-mismatch evaluates the classes both have)"], result.stderr


def test_eval_refuses_classification_data_with_a_class_beyond_the_models(trained, synthetic_root, tmp_path):
    """Classification's classes are the data's whole class set: an extra class stays an error."""
    import shutil

    path, _ = trained
    val = Path(shutil.copytree(synthetic_root / "imagenette_160" / "val", tmp_path / "imagenette_160" / "val"))
    image = next(p for p in sorted(val.rglob("*")) if p.is_file())
    (val / "zebra").mkdir()
    shutil.copy(image, val / "zebra" / image.name)
    result = run_eval("--weights", str(path), "--data_root", str(tmp_path), "--tasks", "cls")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    # (the synthetic val has images of only some classes: with zebra, its declared classes are its folders)
    assert len(lines) == 1 and lines[0].startswith(f"error: classification classes of {val} differ from the "
                                                   "model's: missing "), result.stderr
    assert "; extra zebra (--allow-class-mismatch" in lines[0], result.stderr
