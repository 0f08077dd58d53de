"""Faults and bad input (issue 16), with real processes and signals where that is what happens;
docs/reliability.md lists what each test tries and what the user sees."""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from cl_bench.results import upsert_run
from tests.builders import read_runs

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "experiments" / "smoke.yaml"


def _upsert_many(runs_csv: str, prefix: str, count: int) -> None:
    for i in range(count):
        upsert_run(Path(runs_csv), {"run_id": f"{prefix}{i}", "strategy": prefix, "seed": i})


def test_concurrent_writers_lose_no_row(tmp_path):
    runs_csv = tmp_path / "runs.csv"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_upsert_many, args=(str(runs_csv), prefix, 100)) for prefix in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
        assert writer.exitcode == 0
    runs = read_runs(runs_csv)
    assert len(runs) == 200 and runs["run_id"].is_unique


# Runs the CLI in a child process that is killed (SIGKILL) the moment it would
# write the runs.csv row: summary.json and the other files are already written.
KILL_BEFORE_ROW = """
import os, signal, sys
from cl_bench import results
results.upsert_run = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from cl_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_between_summary_and_row_is_repaired_on_the_next_start(tmp_path):
    command = ["--config", str(SMOKE), "--strategy", "naive", "--epochs", "1", "--out", str(tmp_path),
               "--logger", "none"]
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_ROW, *command], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9
    (summary,) = tmp_path.glob("*/summary.json")
    assert not (tmp_path / "runs.csv").exists()

    again = subprocess.run([sys.executable, "run_bench.py", *command], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert "runs.csv row was missing" in again.stdout and "skipped" in again.stdout
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs["run_id"].tolist() == [summary.parent.name]
    assert (summary.parent / "model.pt").is_file() and not (summary.parent / "checkpoint.pt").exists()


# ---- one test per numbered item of issue 16 (items 5 and 6 are above) ----------------------------

FAST = ["--strategy", "naive", "--epochs", "1", "--logger", "none"]


def cli(*args: str, cwd: Path = REPO, code: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process (``code``: a ``python -c`` program standing in for run_bench.py)."""
    program = ["-c", code] if code else [str(REPO / "run_bench.py")]
    return subprocess.run([sys.executable, *program, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The child's stderr, which must be exactly one ``error: ...`` line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    from cl_bench.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_dir_of(*args: str) -> Path:
    from cl_bench.cli import build_parser
    from cl_bench.cli.train_command import train_config
    from cl_bench.experiment.run_id import run_id_for

    config = train_config(build_parser(None).parse_args(list(args)))
    return Path(config.run.out) / run_id_for(config)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """README's default workflow in a folder without ./data (a fresh clone): a run on the
    embedded default with --backbone-weights naming a folder, stdout a pipe, then export."""
    import torchvision

    work = tmp_path_factory.mktemp("fresh")
    (work / "weights").mkdir()
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), work / "weights" / "mobilenet_v3_small-x.pth")
    run = cli("--config", str(SMOKE), "--strategy", "naive", "--epochs", "1", "--logger", "tqdm",
              "--backbone-weights", "weights", cwd=work)
    assert run.returncode == 0, run.stderr
    export = cli("export", "--select", "best-effort", "--out", "best_model.pt", cwd=work)
    assert export.returncode == 0, export.stderr
    return work, run, export


def _copy_data(synthetic_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_root, tmp_path / "data"))


def test_01_non_finite_loss_stops_the_run_and_export_skips_non_finite_runs(tmp_path, workflow):
    from cl_bench.experiment.checkpoints import load_checkpoint

    args = ["--config", str(SMOKE), *FAST, "--out", str(tmp_path), "--set", "train.lr_per_task.det=1e6"]
    line = one_error_line(cli(*args))
    assert "training diverged: loss nan in stage 2 (det), epoch 1, step" in line
    assert not (tmp_path / "runs.csv").exists()
    assert load_checkpoint(run_dir_of(*args))["completed"] == 0  # the seg stage stays checkpointed

    results = shutil.copytree(workflow[0] / "results", tmp_path / "results")
    runs = pd.read_csv(results / "runs.csv")
    runs["final_mIoU"] = float("inf")
    runs.to_csv(results / "runs.csv", index=False)
    for run_id in runs["run_id"]:  # summary.json too: report and export rebuild a row that disagrees with it
        summary = json.loads((results / run_id / "summary.json").read_text())
        summary["tasks"]["seg"]["final"] = float("inf")
        (results / run_id / "summary.json").write_text(json.dumps(summary))
    line = one_error_line(cli("export", "--select", "best-effort", "--results", str(results), "--out",
                              str(tmp_path / "w.pt")))
    assert "non-finite" in line


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "config.train.epochs: 0 is out of range (allowed: >= 1)"),
    (["--image-size", "50"], "config.data.image_size: 50 is out of range (allowed: >= 32, a multiple of 32)"),
    (["--batch-size", "0"], "config.train.batch_size: 0 is out of range (allowed: >= 1)"),
    (["--lr", "-1"], "config.train.lr: -1.0 is out of range (allowed: > 0)"),
    (["--set", "tasks.det.nms_iou=1.5"], "tasks.det.nms_iou: 1.5 is out of range (allowed: in [0, 1])"),
    (["--set", "tasks.cls.label_smoothing=-0.1"], "tasks.cls.label_smoothing: -0.1 is out of range"),
    (["--config", "EPOCHS_MINUS_2"], "train.epochs: -2 is out of range (allowed: >= 1)"),
])
def test_02_settings_out_of_range_are_one_line_before_any_work(tmp_path, capsys, args, message):
    if "EPOCHS_MINUS_2" in args:
        (tmp_path / "bad.yaml").write_text("train:\n  epochs: -2\n")
        args = ["--config", str(tmp_path / "bad.yaml")]
    code, _, err = in_process(capsys, *args, "--out", str(tmp_path / "out"), "--logger", "none")
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_03_per_task_settings_take_task_names_and_aliases_only(capsys):
    from cl_bench.cli import build_parser
    from cl_bench.cli.train_command import train_config

    config = train_config(build_parser(None).parse_args(
        ["--set", "train.epochs_per_task.detection=5", "--set", "train.task_weights.seg=2"]))
    assert config.train.epochs_per_task == {"det": 5} and config.train.task_weights == {"seg": 2.0}
    for key in ("train.lr_per_task.bogus=0.1", "train.epochs_per_task.dett=3", "data.roots.bogus=/x",
                "data.classes.bogus=[a]"):
        code, _, err = in_process(capsys, "--set", key, "--logger", "none")
        assert code == 1 and "unknown task '" in err, err
        assert "known: seg (segmentation), det (detection), cls (classification)" in err


def test_04_data_check_warns_about_each_dropped_box(synthetic_root, tmp_path, capsys):
    root = _copy_data(synthetic_root, tmp_path)
    labels = root / "mini_coco_det" / "train" / "labels.json"
    data = json.loads(labels.read_text())
    data["annotations"].append({**data["annotations"][0], "id": 9999, "bbox": [10, 10, -5, 8]})
    labels.write_text(json.dumps(data))
    code, out, _ = in_process(capsys, "data", "check", "--data-root", str(root), "--quick")
    assert code == 0
    assert f"warning: {labels}: annotation 9999 dropped: degenerate bbox [10, 10, -5, 8]" in out
    assert "no errors found; 1 warning(s) above" in out


def test_07_the_same_run_started_twice_names_the_holder(synthetic_root, tmp_path):
    from cl_bench.experiment.run_lock import run_lock

    args = ["--data-root", str(synthetic_root), *FAST, "--out", str(tmp_path)]
    run_dir = run_dir_of(*args)
    run_dir.mkdir(parents=True)
    with run_lock(run_dir):  # this test process holds the run; the child is the second start
        line = one_error_line(cli(*args))
    assert f"{run_dir}: this run is already running (pid {os.getpid()} on " in line
    assert not (run_dir / "log.txt").exists()


# The child is killed (SIGKILL) right after writing the temporary file of its first checkpoint.
KILL_IN_CHECKPOINT_WRITE = """
import os, pathlib, signal, sys
write_bytes = pathlib.Path.write_bytes
def write_then_die(self, data):
    write_bytes(self, data)
    if self.name.startswith(".checkpoint.pt."):
        os.kill(os.getpid(), signal.SIGKILL)
pathlib.Path.write_bytes = write_then_die
from cl_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_08_a_kill_during_a_checkpoint_write_leaves_no_temporary_after_the_next_start(synthetic_root, tmp_path):
    args = ["--data-root", str(synthetic_root), *FAST, "--out", str(tmp_path)]
    assert cli(*args, code=KILL_IN_CHECKPOINT_WRITE).returncode == -9
    run_dir = run_dir_of(*args)
    (stale,) = run_dir.glob(".checkpoint.pt.*.tmp")
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert f"removed {stale}" in again.stdout and not list(run_dir.glob("*.tmp"))


# The child's checkpoint writes fail with ENOSPC from the second one on (a full disk).
DISK_FULL_AT_SECOND_CHECKPOINT = """
import errno, os, pathlib, sys
write_bytes, calls = pathlib.Path.write_bytes, []
def fill_up(self, data):
    if self.name.startswith(".checkpoint.pt."):
        calls.append(self)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write_bytes(self, data)
pathlib.Path.write_bytes = fill_up
from cl_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_09_unwritable_output_and_a_full_disk_are_one_line(synthetic_root, tmp_path):
    from cl_bench.experiment.checkpoints import load_checkpoint

    line = one_error_line(cli("--data-root", str(synthetic_root), *FAST, "--out", "/proc/cl_bench_results"))
    assert "/proc/cl_bench_results/" in line and "output folder is not writable" in line

    read_only = tmp_path / "read_only"
    read_only.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(read_only), str(read_only)],
                      capture_output=True).returncode == 0:  # needs root; skipped elsewhere
        try:
            line = one_error_line(cli("--data-root", str(synthetic_root), *FAST, "--out", str(read_only)))
            assert "output folder is not writable (Read-only file system)" in line
        finally:
            subprocess.run(["umount", str(read_only)], check=True)

    args = ["--data-root", str(synthetic_root), *FAST, "--out", str(tmp_path / "out")]
    line = one_error_line(cli(*args, code=DISK_FULL_AT_SECOND_CHECKPOINT))
    run_dir = run_dir_of(*args)
    assert line == f"error: {run_dir / 'checkpoint.pt'}: cannot write (No space left on device)"
    assert load_checkpoint(run_dir)["completed"] == 0 and not list(run_dir.glob("*.tmp"))


def test_10_empty_weights_backbone_and_checkpoint_files_are_one_line(synthetic_root, tmp_path, capsys):
    from cl_bench.cli.eval_command import main as eval_main

    empty = tmp_path / "mobilenet_v3_small.pth"
    empty.touch()
    assert eval_main(["--weights", str(empty), "--data_root", str(synthetic_root)]) == 1
    assert capsys.readouterr().err == f"error: {empty}: empty file (0 bytes), not a weights file; export it again\n"

    args = ["--data-root", str(synthetic_root), *FAST, "--out", str(tmp_path / "out")]
    for weights in (empty, tmp_path):  # the file, and a folder holding it
        code, _, err = in_process(capsys, *args, "--backbone-weights", str(weights))
        assert (code, err) == (1, f"error: {empty}: empty file (0 bytes), not a backbone weights file\n")

    checkpoint = run_dir_of(*args) / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.touch()
    code, _, err = in_process(capsys, *args)
    assert (code, err) == (1, f"error: {checkpoint}: empty checkpoint (0 bytes); delete it to start the run "
                              "afresh\n")


def test_11_a_checkpoint_damaged_in_the_middle_is_refused(tmp_path):
    from cl_bench.errors import CLBenchError
    from cl_bench.experiment.checkpoints import load_checkpoint, rng_state, save_checkpoint

    save_checkpoint(tmp_path, {"completed": 0, "model": {"w": torch.arange(100_000.0)}, "rng": rng_state()})
    assert load_checkpoint(tmp_path)["completed"] == 0
    path = tmp_path / "checkpoint.pt"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(content)
    with pytest.raises(CLBenchError, match="damaged checkpoint .* does not match its sha256"):
        load_checkpoint(tmp_path)


def test_12_set_yaml_errors_are_one_line_and_exponent_numbers_are_floats(tmp_path, capsys):
    from cl_bench.cli import build_parser
    from cl_bench.cli.train_command import train_config

    code, _, err = in_process(capsys, "--set", "train.epochs=[1,2", "--logger", "none")
    assert code == 1 and err.startswith("error: --set train.epochs=[1,2: not a valid YAML value (")
    assert len(err.splitlines()) == 1
    (tmp_path / "c.yaml").write_text("train:\n  lr: 1e-3\n  weight_decay: 1.0e-4\n"
                                     "strategy:\n  name: ewc\n  options:\n    ewc_lambda: 1e6\n")
    config = train_config(build_parser(None).parse_args(
        ["--config", str(tmp_path / "c.yaml"), "--set", "train.backbone_lr_scale=3e-4",
         "--set", "strategy.options.decay_factor=1e-1"]))
    assert (config.train.lr, config.train.weight_decay, config.train.backbone_lr_scale) == (1e-3, 1e-4, 3e-4)
    assert config.strategy.options == {"ewc_lambda": 1e6, "decay_factor": 0.1}


def test_13_readme_workflow_works_on_a_fresh_clone(workflow):
    work, _, export = workflow
    command = "python eval.py --weights best_model.pt --data_root synthetic --tasks all"
    assert f"evaluate it on the data the run used: {command}" in export.stdout
    evaluate = [sys.executable, str(REPO / "eval.py"), *shlex.split(command)[2:]]
    evaluated = subprocess.run(evaluate, cwd=work, capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    assert all(title in evaluated.stdout for title in ("detection", "segmentation", "classification"))
    missing = subprocess.run([*evaluate[:-4], "--data_root", "data"], cwd=work, capture_output=True, text=True,
                             timeout=300)
    assert one_error_line(missing) == f"error: {work / 'data'}: data root not found"


EVAL_ARGS = "import sys; from cl_bench.cli.eval_command import main; sys.exit(main(sys.argv[1:]))"


def test_14_eval_refuses_other_class_names_unless_allowed(workflow, tmp_path):
    from scenarios.synthetic import synthetic_path

    work = workflow[0]
    root = Path(shutil.copytree(synthetic_path(), tmp_path / "data"))
    labels = root / "mini_coco_det" / "val" / "labels.json"
    data = json.loads(labels.read_text())
    renamed = {"person": "zebra", "car": "giraffe"}
    data["categories"] = [{**c, "name": renamed.get(c["name"], c["name"])} for c in data["categories"]]
    labels.write_text(json.dumps(data))
    args = ["--weights", str(work / "best_model.pt"), "--data_root", str(root), "--tasks", "det"]
    line = one_error_line(cli(*args, code=EVAL_ARGS))
    assert "missing car, person; extra zebra, giraffe (--allow-class-mismatch" in line
    allowed = cli(*args, "--allow-class-mismatch", code=EVAL_ARGS)
    assert allowed.returncode == 0, allowed.stderr
    assert "evaluating the 8 classes both have (--allow-class-mismatch)" in allowed.stdout


def test_15_every_split_is_checked_before_the_first_experience(synthetic_root, tmp_path):
    from cl_bench.config import Config, DataConfig, RunConfig, StrategyConfig, TrainConfig
    from cl_bench.errors import CLBenchError
    from cl_bench.experiment.runner import run_experiment

    root = _copy_data(synthetic_root, tmp_path)
    broken = sorted((root / "imagenette_160" / "val").rglob("*.*"))[0]
    broken.write_bytes(b"not an image")
    labels = root / "mini_coco_det" / "train" / "labels.json"
    data = json.loads(labels.read_text())
    data["annotations"].append({**data["annotations"][0], "id": 777, "bbox": [1, 1, 0, 4]})
    labels.write_text(json.dumps(data))
    lines: list[str] = []
    config = Config(DataConfig(root=str(root)), train=TrainConfig(epochs=1), strategy=StrategyConfig("naive"),
                    run=RunConfig(out=str(tmp_path / "out"), logger="none"))
    with pytest.raises(CLBenchError, match=f"{broken}: corrupt or unreadable image"):
        run_experiment(config, log=lines.append)
    assert any("annotation 777 dropped" in line for line in lines)
    assert not any(line.startswith("stage ") for line in lines)


def test_16_backbone_weights_chosen_from_a_folder_are_recorded_with_their_sha256(workflow):
    from cl_bench.digest import sha256_file

    work = workflow[0]
    chosen = work / "weights" / "mobilenet_v3_small-x.pth"
    digest = sha256_file(chosen)
    (run_dir,) = (p.parent for p in (work / "results").glob("*/summary.json"))
    assert f"# backbone_weights_sha256: {digest}" in (run_dir / "config.yaml").read_text()
    expected = {"backbone_weights_file": str(chosen.resolve()), "backbone_weights_sha256": digest}
    assert expected.items() <= json.loads((run_dir / "summary.json").read_text())["environment"].items()
    assert json.loads((work / "best_model.card.json").read_text())["backbone_weights"] == expected


def test_17_output_files_follow_the_umask_and_the_card_is_git_ignored(workflow):
    work = workflow[0]
    mask = os.umask(0)
    os.umask(mask)
    (run_dir,) = (p.parent for p in (work / "results").glob("*/summary.json"))
    for path in (work / "results" / "runs.csv", run_dir / "model.pt", run_dir / "summary.json",
                 work / "best_model.pt", work / "best_model.card.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", "best_model.card.json"], cwd=REPO)
    assert ignored.returncode == 0


def test_18_progress_into_a_pipe_has_no_carriage_return_frames(workflow):
    run = workflow[1]
    assert "stage 3/3" in run.stdout and "\r" not in run.stdout + run.stderr


def test_02_strategy_options_are_range_checked_too():
    from cl_bench.errors import CLBenchError
    from strategies import get_strategy

    for name, options, key in (("ewc", {"ewc_lambda": -1}, "ewc_lambda"), ("lwf", {"temperature": 0}, "temperature"),
                               ("ewc_replay", {"replay": {"per_task_per_step": 0}}, "replay.per_task_per_step"),
                               ("si", {"damping": 0}, "damping"), ("mas", {"decay_factor": 2}, "decay_factor")):
        with pytest.raises(CLBenchError, match=rf"strategy.options \({name}\).{key}: .* out of range"):
            get_strategy(name).options(options)
