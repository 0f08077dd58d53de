"""The Ray task of one grid run: ``run_experiment`` on whatever node Ray picked.

On the driver's node the run writes into the results folder as any run does.
On another node (a cluster without a shared file system) it runs into a
node-local staging folder and returns its result files, which the driver writes
into its own results folder. A CLBenchError (bad input: retrying cannot help)
comes back as a failed result; any other exception, and a worker that dies, is
retried by Ray and resumes from the run's checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch

from cl_bench.config import Config
from cl_bench.errors import CLBenchError, one_line
from cl_bench.experiment.checkpoints import CHECKPOINT
from cl_bench.experiment.run_id import run_id_for
from cl_bench.experiment.runner import run_experiment

PID_FILE = "worker.pid"  # pid of the process running the run, while it runs


@dataclass
class RunResult:
    """What a task returns: the run's summary, or its error; ``files`` (path in the run folder -> bytes)
    when it ran on another node than the driver."""

    run_id: str
    summary: dict[str, Any] | None = None
    skipped: bool = False
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    attempt: str = ""  # the attempt's token, and how many board calls it made
    board_calls: int = 0


def staging_folder(out: str) -> Path:
    """The node-local results folder of runs whose driver's folder is ``out`` on another machine."""
    return Path(tempfile.gettempdir()) / "cl_bench_grid" / hashlib.sha256(out.encode()).hexdigest()[:12]


def result_files(run_dir: Path) -> dict[str, bytes]:
    """Every file of a finished run folder but the checkpoint and the pid file."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name not in (CHECKPOINT, PID_FILE)}


def interruptible() -> None:
    """Let ``ray.cancel`` interrupt this worker: it raises KeyboardInterrupt through Python's SIGINT handler,
    which a worker lacks when its cluster was started by a process that ignored SIGINT (a background or
    nohup start); the cancelled run would then be force-killed after the grace, its pid file left behind."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def execute_run(config: Config, driver_node: str, threads: int, board: Any) -> RunResult:
    """Train one run (or skip it when finished, resume it when interrupted); see the module docstring."""
    interruptible()
    remote = ray.get_runtime_context().get_node_id() != driver_node
    if remote:
        config.run.out = str(staging_folder(config.run.out))
    run_id = run_id_for(config)
    run_dir = Path(config.run.out) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
    # Board calls are not waited on here: a task blocked in ray.get lends its CPUs, and Ray starts the next
    # run beside it. The result says how many this attempt made; the driver waits until the board has them.
    attempt, calls = uuid.uuid4().hex, 1  # a retry may run in the same worker process: a token, not the pid
    board.started.remote(run_id, socket.gethostname(), attempt)
    torch.set_num_threads(threads)

    def log(line: str) -> None:
        nonlocal calls
        board.note.remote(run_id, attempt, line)
        calls += 1

    try:
        outcome = run_experiment(config, log=log)
    except CLBenchError as error:
        return RunResult(run_id, error=one_line(error), attempt=attempt, board_calls=calls)
    finally:
        (run_dir / PID_FILE).unlink(missing_ok=True)
    return RunResult(run_id, outcome.summary, outcome.skipped, files=result_files(run_dir) if remote else {},
                     attempt=attempt, board_calls=calls)
