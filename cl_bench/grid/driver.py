"""Run a planned grid on Ray: one task per unfinished run, with resource requests and retries.

Finished runs (their runs.csv row and settings) are skipped before Ray starts.
Without an address the driver starts a local Ray instance sized to the machine
(or uses the one this process already started); with one it joins that cluster.
Each run is a task asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs
(fractions share a GPU); Ray retries a task whose worker died or raised up to
``retries`` times, and ``run_experiment`` resumes it from its checkpoint. Ctrl-C
cancels the tasks (a KeyboardInterrupt in each, so atomic writes clean up),
stops a Ray the driver started, and re-raises: the same grid again continues.
"""

from __future__ import annotations

import copy
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import ray
import yaml
from ray.exceptions import RayError

from cl_bench import results
from cl_bench.atomic import atomic_path
from cl_bench.config import Config
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError, one_line
from cl_bench.experiment.run_id import finished_with, resolved_options
from cl_bench.experiment.run_record import add_runs_row
from cl_bench.grid.board import Attempts, Board
from cl_bench.grid.plan import GridRun
from cl_bench.grid.progress import Progress
from cl_bench.grid.status import RunStatus
from cl_bench.grid.worker import RunResult, execute_run

POLL_S = 1.0  # how often the driver reads the board
BOARD_WAIT_S = 30.0  # how long a result waits for its attempt's board calls to land
CANCEL_GRACE_S = 10.0  # how long cancelled tasks get to stop cleanly before they are killed
PROBE_TIMEOUT_S = 10.0  # how long a HOST:PORT address gets to accept a connection before the grid gives up


@dataclass
class GridOptions:
    """Where results go and how runs are placed on Ray."""

    out: Path
    ray_address: str | None = None  # None: local Ray sized to the machine
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_concurrent: int | None = None  # None: as many as Ray's resources allow
    retries: int = 2
    on_start: Callable[[], None] | None = None  # called once Ray is up and the resources suffice, before any run


def is_finished(run: GridRun, out: Path) -> bool:
    """The run has its runs.csv row in ``out`` and a run folder with the same settings (a CLBenchError
    when that run recorded other strategy option defaults)."""
    return results.has_run(out / "runs.csv", run.run_id) and finished_with(
        out / run.run_id, yaml.safe_dump(to_dict(run.config), sort_keys=False), resolved_options(run.config))


def _probe(address: str) -> None:
    """Fail in seconds when HOST:PORT accepts no connection (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise CLBenchError(f"--ray-address {address}: no Ray cluster answers there ({one_line(error)}); "
                           "start one with `ray start --head` or leave the flag out for a local one") from None


def _start_ray(options: GridOptions) -> bool:
    """Start or join Ray unless this process already did; True when this call connected."""
    if ray.is_initialized():
        return False
    if options.ray_address:
        _probe(options.ray_address)
    try:
        ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except ConnectionError as error:
        raise CLBenchError(f"--ray-address {options.ray_address}: {one_line(error)}") from None
    return True


def _driver_node() -> str:
    """The Ray node this driver runs on: tasks placed on it write into the results folder themselves."""
    return ray.get_runtime_context().get_node_id()


def _check_resources(options: GridOptions) -> None:
    total = ray.cluster_resources()
    for name, wanted, flag in (("CPU", options.cpus_per_run, "--cpus-per-run"),
                               ("GPU", options.gpus_per_run, "--gpus-per-run")):
        if wanted > total.get(name, 0):
            raise CLBenchError(f"{flag} {wanted:g}: the Ray cluster has {total.get(name, 0):g} {name}s in all")


def task_config(run: GridRun, out: Path) -> Config:
    """The run's config as its task gets it: results into ``out`` (absolute), log.txt as its only log."""
    config = copy.deepcopy(run.config)
    config.run.out, config.run.logger = str(out), "none"
    return config


def _store(result: RunResult, run: GridRun, out: Path) -> None:
    """Write the files a run on another node returned into ``out`` and add its runs.csv row (last)."""
    for name, data in result.files.items():
        with atomic_path(out / run.run_id / name) as tmp:
            tmp.write_bytes(data)
    add_runs_row(task_config(run, out), result.summary)


def _show(status: RunStatus, attempts: Attempts | None, now: float) -> None:
    """The run's attempts, host, time and log lines as the board has them."""
    if attempts is not None and attempts.hosts:
        status.state, status.host, status.attempts = "running", attempts.hosts[-1], len(attempts.hosts)
        status.elapsed_s, status.notes = now - attempts.started, attempts.notes


def board_after(board: ray.actor.ActorHandle, result: RunResult) -> Attempts | None:
    """The board's record of ``result``'s run once every call of the attempt that returned it has landed
    (a worker's calls race its result to the driver), or as it is after BOARD_WAIT_S."""
    deadline = time.monotonic() + BOARD_WAIT_S
    while True:
        attempts = ray.get(board.snapshot.remote()).get(result.run_id)
        landed = attempts is not None and attempts.calls.get(result.attempt, 0) >= result.board_calls
        if landed or time.monotonic() > deadline:
            return attempts
        time.sleep(0.05)


def _finish(status: RunStatus, ref: ray.ObjectRef, out: Path, board: ray.actor.ActorHandle) -> None:
    try:
        result: RunResult = ray.get(ref)
    except RayError as error:  # retries used up: the last exception, or the worker's death
        status.state, status.error = "failed", one_line(error)
        return
    _show(status, board_after(board, result), time.time())
    if result.error is not None:
        status.state, status.error = "failed", result.error
        return
    if result.files:
        _store(result, status.run, out)
    status.state, status.summary = "skipped" if result.skipped else "done", result.summary


def _cancel(pending: dict[ray.ObjectRef, RunStatus]) -> None:
    """Interrupt the running tasks (KeyboardInterrupt in each), then kill those still running after a grace."""
    for ref in pending:
        ray.cancel(ref)
    _, left = ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_GRACE_S)
    for ref in left:
        ray.cancel(ref, force=True)


def run_grid(runs: list[GridRun], options: GridOptions, progress: TextIO | None = None) -> list[RunStatus]:
    """Run every unfinished run of ``runs`` into ``options.out``, showing progress on ``progress``
    (default stdout); returns each run's status."""
    out = options.out.resolve()
    statuses = [RunStatus(run, state="skipped" if is_finished(run, out) else "pending") for run in runs]
    todo = [s for s in statuses if s.state == "pending"]
    if not todo:
        return statuses
    started_ray = _start_ray(options)
    pending: dict[ray.ObjectRef, RunStatus] = {}
    shown = Progress(statuses, progress)
    try:
        _check_resources(options)
        if options.on_start is not None:
            options.on_start()
        board = Board.remote()
        driver_node = _driver_node()
        task = ray.remote(execute_run)
        placement = {"num_cpus": options.cpus_per_run, "num_gpus": options.gpus_per_run,
                     "max_retries": options.retries, "retry_exceptions": True}
        threads = max(1, int(options.cpus_per_run))
        limit = options.max_concurrent or len(todo)
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < limit:
                status = queue.pop(0)
                ref = task.options(name=status.run.run_id, **placement).remote(
                    task_config(status.run, out), driver_node, threads, board)
                pending[ref] = status
            ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)  # all that have ended
            board_now = ray.get(board.snapshot.remote())
            now = time.time()
            for status in pending.values():
                _show(status, board_now.get(status.run.run_id), now)
            for ref in ready:
                _finish(pending.pop(ref), ref, out, board)
            shown.refresh()
    except KeyboardInterrupt:
        if pending:
            _cancel(pending)
        raise
    finally:
        shown.close()
        if started_ray:
            ray.shutdown()
    return statuses
