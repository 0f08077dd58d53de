"""The board: a small Ray actor the grid's tasks report to (attempt started, log line), read by the driver."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import ray


@dataclass
class Attempts:
    """What the tasks of one run reported: each attempt's host and pid, the first start, the last log line."""

    hosts: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    started: float = 0.0
    notes: list[str] = field(default_factory=list)


@ray.remote(num_cpus=0)
class Board:
    """Attempts per run id; ``snapshot`` returns a copy."""

    def __init__(self) -> None:
        self.runs: dict[str, Attempts] = {}

    def started(self, run_id: str, host: str, pid: int) -> None:
        attempts = self.runs.setdefault(run_id, Attempts(started=time.time()))
        attempts.hosts.append(host)
        attempts.pids.append(pid)

    def note(self, run_id: str, line: str) -> None:
        self.runs.setdefault(run_id, Attempts(started=time.time())).notes.append(line)

    def snapshot(self) -> dict[str, Attempts]:
        return dict(self.runs)
