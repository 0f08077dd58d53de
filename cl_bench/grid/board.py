"""The board: a small Ray actor the grid's tasks report to (attempt started, log line), read by the driver."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import ray


@dataclass
class Attempts:
    """What the tasks of one run reported: each attempt's host, the first start, the log lines, and how many
    calls each attempt (by its token) has made: the driver waits for them all once a result is in."""

    hosts: list[str] = field(default_factory=list)
    started: float = 0.0
    notes: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)


@ray.remote(num_cpus=0)
class Board:
    """Attempts per run id; ``snapshot`` returns a copy."""

    def __init__(self) -> None:
        self.runs: dict[str, Attempts] = {}

    def started(self, run_id: str, host: str, attempt: str) -> None:
        attempts = self.runs.setdefault(run_id, Attempts(started=time.time()))
        attempts.hosts.append(host)
        attempts.calls[attempt] = attempts.calls.get(attempt, 0) + 1

    def note(self, run_id: str, attempt: str, line: str) -> None:
        attempts = self.runs.setdefault(run_id, Attempts(started=time.time()))
        attempts.notes.append(line)
        attempts.calls[attempt] = attempts.calls.get(attempt, 0) + 1

    def snapshot(self) -> dict[str, Attempts]:
        return dict(self.runs)
