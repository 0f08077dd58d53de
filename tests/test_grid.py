"""Grids on a local Ray (2 CPUs): results equal to runs done one by one, a killed worker retried and
resumed, a finished grid skipped, two grids at once, results of another node brought home."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import ray
import torch

from cl_bench.cli import build_parser, main
from cl_bench.cli.grid_command import plan_from_args
from cl_bench.config import apply_set, load_config
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.experiment.checkpoints import CHECKPOINT
from cl_bench.experiment.run_id import run_id_for
from cl_bench.experiment.runner import run_experiment
from cl_bench.grid import driver
from cl_bench.grid.board import Board
from cl_bench.grid.driver import GridOptions, run_grid, task_config
from cl_bench.grid.plan import GridSpec, parse_set, plan_runs
from cl_bench.grid.worker import PID_FILE, execute_run, staging_folder
from cl_bench.rules import setting_key
from strategies import STRATEGIES
from tests.builders import read_runs

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"
SMALL = ["train.epochs=1", "data.synthetic_train=12"]  # about 3 s a run
CLI_SMALL = ["--config", str(SMOKE), "--epochs", "1", "--set", "data.synthetic_train=12"]


def plan(strategies: list[str], seeds: list[int]):
    base = load_config(SMOKE)
    return plan_runs(GridSpec(strategies, seeds, [["seg", "det", "cls"]], SMALL), lambda a: apply_set(base, a))


def matrices(run_dir: Path) -> dict[str, pd.DataFrame]:
    found = {p.name: pd.read_csv(p) for p in sorted(run_dir.glob("matrix_*.csv"))}
    assert len(found) == 6
    return found


def assert_same_matrices(run_dir: Path, reference_dir: Path) -> None:
    reference = matrices(reference_dir)
    for name, frame in matrices(run_dir).items():
        pd.testing.assert_frame_equal(frame, reference[name], check_exact=True, obj=f"{run_dir.name}/{name}")


def plan_grid_file(name: str):
    """The grid file's axes and runs, planned as ``run_bench.py grid FILE`` plans them."""
    args = build_parser("grid").parse_args(["grid", str(ROOT / "experiments" / "grids" / name)])
    spec, runs, _ = plan_from_args(args)
    return spec, runs


def test_the_challenge_grid_file_expands_to_360_distinct_runs():
    spec, runs = plan_grid_file("challenge.yaml")
    assert set(spec.strategies) == set(STRATEGIES)  # every registered strategy
    assert len({r.run_id for r in runs}) == 360 == 12 * 5 * 6
    assert {r.config.data.image_size for r in runs} == {512}


def test_the_reference_grid_file_plans_every_strategy_at_the_recipe():
    spec, runs = plan_grid_file("reference.yaml")
    assert set(STRATEGIES) <= set(spec.strategies)
    assert len({r.run_id for r in runs}) == 44 == 13 * 3 + 5  # mas+der's own seeds 0-4
    assert spec.declared["mas+der"] == [0, 1, 2, 3, 4] and spec.declared["naive"] == [0, 1, 2]
    # the recipe's 320 px, trained on all of train and reported on val (never the tune split)
    assert {(r.config.data.image_size, r.config.data.tune_split) for r in runs} == {(320, 0)}


def test_the_lite0_reference_grids_plan_the_recipe_its_runner_up_naive_and_the_references():
    spec, runs = plan_grid_file("reference_lite0.yaml")
    base_spec, baselines = plan_grid_file("reference_lite0_baselines.yaml")
    naive_spec, naive = plan_grid_file("reference_lite0_naive.yaml")
    assert spec.declared == {"lwf+der": [0, 1, 2, 3, 4], "der": [0, 1, 2, 3, 4]}
    assert base_spec.declared == {name: [0, 1, 2] for name in ("single_task", "joint")}
    assert naive_spec.declared == {"naive": [0, 1, 2]}
    everything = runs + baselines + naive
    assert len({r.run_id for r in everything}) == 19 == 2 * 5 + 3 * 3
    # the recipe at 224 px on Lite0, trained on all of train and reported on val, into one folder
    assert {(r.config.model.backbone, r.config.data.image_size, r.config.data.tune_split, r.config.run.out)
            for r in everything} == {("efficientnet_lite0", 224, 0, "results/reference_lite0")}
    assert {(r.config.strategy.options["der"]["mem_size"], r.config.strategy.options["der"]["per_task_per_step"])
            for r in runs} == {(480, 4)}
    assert {str(r.config.strategy.options) for r in baselines + naive} == {"{}"}
    # the references run at the first candidate's file: it differs from the recipe only in part rates,
    # which single_task and joint do not apply, so they are the recipe's references (same rule key)
    assert {setting_key(to_dict(r.config)) for r in baselines if r.config.strategy.name == "single_task"} == {
        setting_key(to_dict(r.config)) for r in runs + naive}
    assert {str(r.config.train.part_lr_per_task) for r in runs + naive} != {
        str(r.config.train.part_lr_per_task) for r in baselines}


@pytest.mark.parametrize(("candidate", "run_id"), [("reference_lite0_c07.yaml", "lwf+der_seg-det-cls_s0_c2ea33fc"),
                                               ("reference_lite0_c12.yaml", "lwf+der_seg-det-cls_s0_af866274")])
def test_the_lite0_candidates_keep_the_ids_of_their_val_runs(candidate: str, run_id: str):
    config = load_config(ROOT / "experiments" / candidate)
    assert run_id_for(config) == run_id and (ROOT / "results" / "reference_lite0" / run_id / "summary.json").is_file()


def test_flags_override_the_grid_file():
    args = build_parser("grid").parse_args(["grid", str(ROOT / "experiments" / "grids" / "smoke.yaml"),
                                            "--epochs", "1", "--seeds", "3"])
    _, runs, _ = plan_from_args(args)
    assert [(r.config.strategy.name, r.config.run.seed, ",".join(r.config.data.order)) for r in runs] == [
        ("naive", 3, "seg,det,cls"), ("naive", 3, "cls,det,seg"),
        ("ewc_replay", 3, "seg,det,cls"), ("ewc_replay", 3, "cls,det,seg")]
    assert {r.config.train.epochs for r in runs} == {1} and {r.config.data.image_size for r in runs} == {64}


def test_a_set_with_several_values_is_an_axis():
    fixed, vary = parse_set(["train.epochs=1", "train.lr=0.001,0.0003", "train.epochs_per_task={det: 2, cls: 3},{}"])
    assert fixed == ["train.epochs=1"] and vary == {"train.lr": ["0.001", "0.0003"],
                                                    "train.epochs_per_task": ["{det: 2, cls: 3}", "{}"]}
    base = load_config(SMOKE)
    runs = plan_runs(GridSpec(["naive"], [0], [["seg", "det", "cls"]], fixed, vary), lambda a: apply_set(base, a))
    assert [(r.config.train.lr, r.config.train.epochs_per_task) for r in runs] == [
        (1e-3, {"det": 2, "cls": 3}), (1e-3, {}), (3e-4, {"det": 2, "cls": 3}), (3e-4, {})]
    assert len({r.run_id for r in runs}) == 4
    assert runs[0].setting == "train.lr=0.001, train.epochs_per_task={det: 2, cls: 3}"


@pytest.mark.parametrize(("flags", "message"), [
    (["--strategies", "naive,nope"], "error: unknown strategy 'nope' (known: "),
    (["--strategies", "naive", "--seeds", "4-1"], "error: --seeds 4-1: range 4-1 ends before it starts"),
    (["--strategies", "naive", "--seeds", "x"], "error: --seeds x: expected seeds like 0-4 or 0,2,5"),
    (["--strategies", "naive", "--orders", "seg,det,cls", "seg,det"],
     "error: data.order: seg,det is not a permutation"),
    (["--strategies", "ewc", "--set", "strategy.options.nope=1"], "error: "),
    (["--strategies", "naive", "--cpus-per-run", "0"], "error: --cpus-per-run 0.0: must be positive"),
])
def test_a_bad_grid_stops_in_one_line_before_any_run(flags, message, capsys, tmp_path):
    assert main(["grid", *flags, "--out", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1 and "grid:" not in captured.out
    assert not ray.is_initialized() and not list(tmp_path.iterdir())


def test_an_unreachable_ray_address_stops_in_one_line_within_seconds(capsys, tmp_path):
    with socket.socket() as closed:  # a port nothing listens on once this block ends
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    assert main(["grid", "--strategies", "naive", *CLI_SMALL, "--out", str(tmp_path),
                 "--ray-address", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --ray-address 127.0.0.1:{port}: no Ray cluster answers there")
    assert err.count("\n") == 1
    assert time.monotonic() - started < 30 and not ray.is_initialized() and not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def local_ray():
    # started with SIGINT ignored, as a suite run in the background starts it: its workers inherit that, and
    # ray.cancel reaches a run only if the worker restores Python's handler (grid.worker.interruptible)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    finally:
        signal.signal(signal.SIGINT, previous)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory) -> Path:
    """naive and ewc, seeds 0-2, run one after the other in this process with one thread (as a grid worker)."""
    out = tmp_path_factory.mktemp("one_by_one")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for run in plan(["naive", "ewc"], [0, 1, 2]):
            run.config.run.out, run.config.run.logger = str(out), "none"
            run_experiment(run.config, log=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def grid_out(local_ray, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    return out, run_grid(plan(["naive", "ewc"], [0, 1]), GridOptions(out), progress=io.StringIO())


def test_grid_results_equal_runs_done_one_by_one(grid_out, one_by_one):
    out, statuses = grid_out
    assert [s.state for s in statuses] == ["done"] * 4
    runs = read_runs(out / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(s.run.run_id for s in statuses)
    for run_id in runs["run_id"]:
        assert_same_matrices(out / run_id, one_by_one / run_id)


def test_rerun_of_a_finished_grid_skips_every_run(grid_out, capsys):
    out, _ = grid_out
    before = (out / "runs.csv").read_text()
    assert main(["grid", "--strategies", "naive,ewc", "--seeds", "0-1", *CLI_SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"all 4 runs of this grid had already finished in {out}: skipped, nothing trained" in printed
    assert printed.count("skipped") >= 5 and f"report --results {out}" in printed
    assert (out / "runs.csv").read_text() == before


def test_a_run_finished_at_other_option_defaults_is_refused_not_skipped(grid_out, capsys, tmp_path):
    """A default changed since a run finished (the run id covers only the options set): the grid and a
    single run stop in one line naming the folder, and nothing is trained or rewritten."""
    out = tmp_path / "grid"
    shutil.copytree(grid_out[0], out)
    [ewc] = plan(["ewc"], [0])
    summary = out / ewc.run_id / "summary.json"
    recorded = json.loads(summary.read_text())
    assert recorded["strategy_options"] == {"ewc_lambda": 1e5, "mode": "separate", "decay_factor": None}
    recorded["strategy_options"]["ewc_lambda"] = 1.0  # as if trained when the default was 1
    summary.write_text(json.dumps(recorded))
    before = (out / "runs.csv").read_text()
    assert main(["grid", "--strategies", "naive,ewc", "--seeds", "0-1", *CLI_SMALL, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / ewc.run_id}: finished with strategy options ") and err.count("\n") == 1
    assert '"ewc_lambda": 100000.0' in err and "delete the folder and its runs.csv row" in err
    ewc.config.run.out = str(out)
    with pytest.raises(CLBenchError, match="but the defaults now give"):
        run_experiment(ewc.config, log=lambda _: None)
    assert (out / "runs.csv").read_text() == before


def test_killed_worker_is_retried_and_resumes(local_ray, one_by_one, tmp_path):
    [run] = plan(["naive"], [2])
    run_dir = tmp_path / run.run_id
    finished = []
    grid = threading.Thread(target=lambda: finished.append(
        run_grid([run], GridOptions(tmp_path, retries=1), progress=io.StringIO())))
    grid.start()
    deadline = time.monotonic() + 120
    while not (run_dir / CHECKPOINT).is_file():  # stage 1 done: kill it in stage 2
        assert time.monotonic() < deadline and grid.is_alive(), "the run never checkpointed"
        time.sleep(0.02)
    os.kill(int((run_dir / PID_FILE).read_text()), signal.SIGKILL)
    grid.join(timeout=180)
    [status] = finished[0]
    assert status.state == "done" and status.attempts == 2
    assert any(note.startswith(f"resuming {run.run_id} after stage 1/3") for note in status.notes)
    assert list(read_runs(tmp_path / "runs.csv")["run_id"]) == [run.run_id]
    assert_same_matrices(run_dir, one_by_one / run.run_id)


def test_the_driver_reads_an_attempt_and_its_last_line_off_the_board_once_they_land(grid_out):
    """The driver counts attempts and shows log lines from the board; a worker's board calls race its result
    (read as soon as the result was in, a fast attempt was missing from the board about one time in three)."""
    out, statuses = grid_out
    run = statuses[0].run
    board, task = Board.remote(), ray.remote(execute_run)
    for attempt in range(1, 6):  # skipped runs: the fastest attempts there are
        result = ray.get(task.remote(task_config(run, out), ray.get_runtime_context().get_node_id(), 1, board))
        attempts = driver.board_after(board, result)
        assert len(attempts.hosts) == attempt and attempts.calls[result.attempt] == result.board_calls
        assert attempts.notes[-1] == f"run {run.run_id} already finished with this config: skipped " \
                                     f"({out / run.run_id / 'summary.json'})"


def test_a_worker_never_waits_on_ray(grid_out, monkeypatch):
    """A task blocked in ray.get or ray.wait lends its CPUs and Ray starts the next run beside it (two
    2-CPU runs at once on 2 CPUs, as a worker waiting for its board call did): board calls are not waited on."""
    out, statuses = grid_out
    run, board, threads = statuses[0].run, Board.remote(), torch.get_num_threads()

    def forbidden(*args, **kwargs):
        raise AssertionError("a grid worker waited on Ray")

    monkeypatch.setattr(ray, "get", forbidden)
    monkeypatch.setattr(ray, "wait", forbidden)
    try:
        result = execute_run(task_config(run, out), ray.get_runtime_context().get_node_id(), 1, board)
    finally:
        torch.set_num_threads(threads)
    assert result.skipped and result.board_calls == 2  # its start and the skip line


def test_two_grids_at_once_keep_every_row(local_ray, grid_out, tmp_path):
    """Two `grid` commands joining the same Ray cluster, started at once into a folder holding 4 runs."""
    shutil.copytree(grid_out[0], tmp_path, dirs_exist_ok=True)
    commands = [[sys.executable, "run_bench.py", "grid", "--strategies", strategy, "--seeds", "2-3", *CLI_SMALL,
                 "--out", str(tmp_path), "--ray-address", local_ray] for strategy in ("naive", "ewc")]
    grids = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    outputs = [g.communicate(timeout=300)[0] for g in grids]
    assert [g.returncode for g in grids] == [0, 0], outputs
    runs = read_runs(tmp_path / "runs.csv")
    expected = [r.run_id for r in plan(["naive", "ewc"], [0, 1, 2, 3])]
    assert sorted(runs["run_id"]) == sorted(expected)
    assert runs["final_mIoU"].notna().all() and runs["final_top1"].notna().all()


def test_results_of_another_node_come_back_to_the_driver(local_ray, one_by_one, tmp_path, monkeypatch):
    """A task placed on a node other than the driver's runs into that node's staging folder and returns
    its files; the driver writes them and the runs.csv row (simulated: the driver claims another node id)."""
    monkeypatch.setattr(driver, "_driver_node", lambda: "another-node")
    staging = staging_folder(str(tmp_path.resolve()))
    [run] = plan(["ewc"], [2])
    try:
        [status] = run_grid([run], GridOptions(tmp_path), progress=io.StringIO())
        assert status.state == "done" and (staging / run.run_id / "summary.json").is_file()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    assert list(read_runs(tmp_path / "runs.csv")["run_id"]) == [run.run_id]
    assert {"model.pt", "summary.json", "config.yaml", "log.txt"} <= {p.name for p in (tmp_path / run.run_id).iterdir()}
    assert_same_matrices(tmp_path / run.run_id, one_by_one / run.run_id)


def as_under_a_terminal() -> None:
    """SIGINT in the child as a terminal gives it: a suite run in the background inherits SIGINT ignored (then
    Python installs no KeyboardInterrupt handler) or blocked (then it never arrives); exec keeps both."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_stops_the_grid_cleanly_and_a_rerun_continues(local_ray, tmp_path):
    base = load_config(SMOKE)
    # long enough stages that the interrupt lands while the runs train, on a fast machine too
    runs = plan_runs(GridSpec(["naive", "ewc"], [0], [["seg", "det", "cls"]], ["train.epochs=30", SMALL[1]]),
                     lambda a: apply_set(base, a))
    command = [sys.executable, "run_bench.py", "grid", "--strategies", "naive,ewc", "--seeds", "0", "--config",
               str(SMOKE), "--epochs", "30", "--set", SMALL[1], "--out", str(tmp_path), "--ray-address", local_ray]
    grid = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=as_under_a_terminal)
    deadline = time.monotonic() + 600  # generous: a loaded machine starts Ray and trains slowly
    while not list(tmp_path.glob(f"*/{CHECKPOINT}")):
        assert time.monotonic() < deadline and grid.poll() is None, "no run checkpointed"
        time.sleep(0.02)
    masks = [line for line in Path(f"/proc/{grid.pid}/status").read_text().splitlines() if line.startswith("Sig")]
    grid.send_signal(signal.SIGINT)
    output = grid.communicate(timeout=180)[0]
    assert grid.returncode == 130 and "run the same command again to resume" in output, (masks, output)
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(PID_FILE))
    interrupted = {p.parent.name for p in tmp_path.glob(f"*/{CHECKPOINT}")}
    assert interrupted and not (tmp_path / "runs.csv").is_file()
    statuses = run_grid(runs, GridOptions(tmp_path), progress=io.StringIO())
    assert [s.state for s in statuses] == ["done", "done"]
    for status in statuses:
        if status.run.run_id in interrupted:
            assert any(note.startswith(f"resuming {status.run.run_id}") for note in status.notes)
    assert sorted(read_runs(tmp_path / "runs.csv")["run_id"]) == sorted(r.run_id for r in runs)
