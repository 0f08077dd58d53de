"""`data check`: read every split of every task, decode every file, and
summarise what was found and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
from tqdm import tqdm

from cl_bench.config import DataConfig
from cl_bench.errors import DataError
from cl_bench.tasks import TASKS, Task, build_tasks
from scenarios.common import SplitReport
from scenarios.layout import resolve_data

MAX_ERRORS_SHOWN = 10


@dataclass
class SplitCheck:
    """What was found in one split (``report``) and the errors met reading it."""

    task: str
    split: str
    report: SplitReport | None = None
    errors: list[str] = field(default_factory=list)


def _check_task(task: Task, data: DataConfig, root, verify: bool, progress: bool) -> list[SplitCheck]:
    name = task.name
    try:
        classes = task.resolve_classes(root, data.train_split, data.classes.get(name))
    except DataError as error:
        return [SplitCheck(name, data.train_split, errors=[str(error)])]
    checks = []
    found = task.split_type.splits(root)
    # the splits a run reads are checked also when absent (the reader's error names what it found)
    needed = [data.train_split] + ([] if data.tune_split else [data.test_split])
    for split_name in [*found, *(s for s in dict.fromkeys(needed) if s not in found)]:
        check = SplitCheck(name, split_name)
        checks.append(check)
        try:
            split = task.open_split(root, split_name, classes)
            check.report = split.report()
        except DataError as error:
            check.errors.append(str(error))
            continue
        problem = split.training_problem() if split_name == data.train_split else None
        if problem:
            check.errors.append(problem)
        if verify:
            bar = tqdm(range(len(split)), desc=f"{name}/{split_name}", leave=False,
                       disable=None if progress else True)  # None: no bar when not a terminal
            for index in bar:
                try:
                    split.load(index)
                except DataError as error:
                    check.errors.append(str(error))
    return checks


def check_data(data: DataConfig, verify: bool = True, progress: bool = True,
               task_options: dict[str, Any] | None = None,
               tasks: list[str] | None = None) -> tuple[str, list[SplitCheck]]:
    """Check every split of ``tasks`` (default: every task; ``task_options``: the tasks'
    config sections, defaults when None); returns the data source's description and the checks."""
    source = resolve_data(data, tasks)
    tasks = build_tasks(task_options)
    checks = []
    for name, root in source.roots.items():
        checks.extend(_check_task(tasks[name], data, root, verify, progress))
    return source.description, checks


def validate_data(data: DataConfig, task_options: dict[str, Any], log: Callable[[str], None]) -> None:
    """What a run checks before its first experience: every split of its tasks read and
    decoded (``check_data``); warnings are logged, the first error raised with the count."""
    _, checks = check_data(data, progress=False, task_options=task_options, tasks=list(data.order))
    for check in checks:
        for warning in check.report.warnings if check.report else []:
            log(f"warning: {check.task}/{check.split}: {warning}")
    problems = [error for check in checks for error in check.errors]
    if problems:
        more = f" (and {len(problems) - 1} more: see `cl-bench data check`)" if len(problems) > 1 else ""
        raise DataError(f"{problems[0]}{more}")


def _details(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def format_checks(description: str, checks: list[SplitCheck]) -> str:
    """The summary table, each split's statistics, then warnings and errors."""
    rows = [{
        "task": TASKS[c.task].title,
        "split": c.split,
        "images": c.report.images if c.report else "-",
        "classes": c.report.classes if c.report else "-",
        "warnings": len(c.report.warnings) if c.report else 0,
        "errors": len(c.errors),
    } for c in checks]
    lines = [f"data: {description}", "", pd.DataFrame(rows).to_string(index=False), ""]
    for c in checks:
        if c.report:
            lines.append(f"{c.task}/{c.split}:")
            lines += [f"  {key}: {_details(value)}" for key, value in c.report.stats.items()]
            lines += [f"  warning: {w}" for w in c.report.warnings]
    problems = [e for c in checks for e in c.errors]
    if problems:
        lines += ["", f"{len(problems)} problem(s) found:"]
        lines += [f"  {e}" for e in problems[:MAX_ERRORS_SHOWN]]
        if len(problems) > MAX_ERRORS_SHOWN:
            lines.append(f"  ... and {len(problems) - MAX_ERRORS_SHOWN} more")
    else:
        warnings = sum(len(c.report.warnings) for c in checks if c.report)
        lines += ["", f"no errors found; {warnings} warning(s) above" if warnings else "no problems found"]
    return "\n".join(lines)
