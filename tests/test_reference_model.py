"""The reference results work on a fresh clone: the run their report selects keeps its model.pt."""

from __future__ import annotations

from pathlib import Path

from cl_bench.errors import CLBenchError
from cl_bench.model.weights_file import load_weights
from cl_bench.report.collect import load_results
from cl_bench.report.selection import select_run

REPO = Path(__file__).resolve().parents[1]


def test_the_run_the_reference_report_selects_keeps_its_model():
    """export --select on a fresh clone: the run the reference report picks (best, or best-effort while
    none passes the default rule) has its model.pt committed, and it is that run's model."""
    results = load_results(REPO / "results" / "reference")
    rule = results.default_rule
    try:
        run = select_run(results, "best", rule)
    except CLBenchError:
        run = select_run(results, "best-effort", rule)
    weights = REPO / "results" / "reference" / run["run_id"] / "model.pt"
    assert weights.is_file(), f"{weights} is not committed (the reference report's {rule} pick)"
    assert load_weights(weights).meta["run_id"] == run["run_id"]


def test_the_reference_results_need_no_repair():
    """runs.csv agrees with every run's summary.json (rows derived before a field existed included); the one
    warning is the group whose seeds were extended after a look."""
    warnings = load_results(REPO / "results" / "reference").warnings
    assert [w.split(":")[0] for w in warnings] == ["mas+der"], warnings
