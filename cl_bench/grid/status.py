"""The state of one run of a grid, as the driver tracks it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cl_bench.grid.plan import GridRun


@dataclass
class RunStatus:
    """``state``: pending (queued), running, done, failed, or skipped (finished before the grid started)."""

    run: GridRun
    state: str = "pending"
    attempts: int = 0  # task starts reported (more than 1: retried)
    host: str = ""
    elapsed_s: float = 0.0  # from its first start to its end
    summary: dict[str, Any] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # the run's log lines (stages, resuming)
