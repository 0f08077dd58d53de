"""One process per run folder: a non-blocking file lock, and a note saying who holds it."""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from cl_bench.errors import CLBenchError

LOCK = ".run.lock"
OWNER = ".run.owner"  # beside the lock: filelock truncates the lock file when it tries to take it


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock while the block runs; a run folder already held by a
    live process is a CLBenchError naming that process."""
    lock = FileLock(run_dir / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            owner = (run_dir / OWNER).read_text().strip()
        except OSError:
            owner = "another process"
        raise CLBenchError(f"{run_dir}: this run is already running ({owner}); wait for it or stop it") from None
    try:
        (run_dir / OWNER).write_text(f"pid {os.getpid()} on {socket.gethostname()}, since "
                                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        yield
    finally:
        (run_dir / OWNER).unlink(missing_ok=True)
        lock.release()
