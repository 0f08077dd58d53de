"""README's reference results are the committed report's tables, cell by cell."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "results" / "reference" / "report" / "tables"


def tables(text: str) -> list[list[str]]:
    """Every markdown table in ``text``: its runs of consecutive lines that start with ``|``."""
    found, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            found.append(current)
            current = []
    return found


@pytest.mark.parametrize("name", ["overview", "final"])
def test_readme_shows_the_reference_reports_table(name):
    report_table = tables((TABLES / f"{name}.md").read_text())[0]
    readme_tables = tables((REPO / "README.md").read_text())
    same_header = [table for table in readme_tables if table[0] == report_table[0]]
    assert same_header, f"README.md has no table with the header of {name}.md: {report_table[0]}"
    assert report_table in same_header, f"README.md's {name} table differs from results/reference/report"


def test_the_run_the_reference_report_selects_keeps_its_model():
    """export --select on a fresh clone: the run the reference report picks (best, or best-effort while
    none passes the default rule) has its model.pt committed, and it is that run's model."""
    from cl_bench.errors import CLBenchError
    from cl_bench.model.weights_file import load_weights
    from cl_bench.report.collect import load_results
    from cl_bench.report.selection import select_run

    results = load_results(REPO / "results" / "reference")
    rule = results.default_rule
    try:
        run = select_run(results, "best", rule)
    except CLBenchError:
        run = select_run(results, "best-effort", rule)
    weights = REPO / "results" / "reference" / run["run_id"] / "model.pt"
    assert weights.is_file(), f"{weights} is not committed (the reference report's {rule} pick)"
    assert load_weights(weights).meta["run_id"] == run["run_id"]
