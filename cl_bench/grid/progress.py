"""Live progress of a grid: pending / running / done / failed counts and elapsed time.

On a terminal a tqdm bar carries the counts; either way each run's change of
state is one line (started, done, failed), so a log file gets no bar redraws.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from cl_bench.grid.status import RunStatus

STATES = ("pending", "running", "done", "failed")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:d}:{minutes % 60:02d}:{secs:02d}"


def counts(statuses: list[RunStatus]) -> str:
    """``pending 2 · running 2 · done 3 · failed 0`` (skipped runs count as done)."""
    tally = dict.fromkeys(STATES, 0)
    for status in statuses:
        tally["done" if status.state == "skipped" else status.state] += 1
    return " · ".join(f"{state} {n}" for state, n in tally.items())


class Progress:
    """Shows a grid's statuses on ``stream`` (default stdout); ``bar`` None: a bar only on a terminal."""

    def __init__(self, statuses: list[RunStatus], stream: TextIO | None = None, bar: bool | None = None) -> None:
        self.statuses, self.stream = statuses, stream or sys.stdout
        self.began = time.monotonic()
        self.shown = {s.run.run_id: (s.state, s.attempts) for s in statuses}
        interactive = self.stream.isatty() if bar is None else bar
        self.bar = tqdm(total=len(statuses), unit="run", file=stream, dynamic_ncols=True) if interactive else None
        self.refresh()

    def _line(self, text: str) -> None:
        line = f"[{_clock(time.monotonic() - self.began)}] {text}"
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def refresh(self) -> None:
        """A line for each run whose state (or attempt) changed since the last call, and the bar's counts."""
        for status in self.statuses:
            if self.shown[status.run.run_id] == (status.state, status.attempts):
                continue
            self.shown[status.run.run_id] = (status.state, status.attempts)
            detail = {"running": f"on {status.host}" + (f", attempt {status.attempts}" if status.attempts > 1 else ""),
                      "done": f"{status.elapsed_s:.1f} s", "failed": status.error or "",
                      "skipped": "already finished", "pending": ""}[status.state]
            self._line(f"{status.state:<7} {status.run.label} ({status.run.run_id}) {detail} | {counts(self.statuses)}")
        if self.bar is not None:
            self.bar.n = sum(s.state in ("done", "failed", "skipped") for s in self.statuses)
            self.bar.set_postfix_str(counts(self.statuses), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
