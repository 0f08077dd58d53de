"""Faults with real processes: no lost row, no run reported finished without its row."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pandas as pd

from cl_bench.results import read_runs, upsert_run

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
