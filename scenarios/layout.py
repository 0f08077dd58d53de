"""Where each task's data lives: a data root with task folders, per-task
overrides, or the synthetic default."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cl_bench.config import DataConfig
from cl_bench.errors import DataError
from cl_bench.tasks import TASKS, Task

log = logging.getLogger(__name__)

DEFAULT_DATA_ROOT = Path("data")
SYNTHETIC_ROOT = "synthetic"  # a data root naming the embedded synthetic default (``--data_root synthetic``)


@dataclass(frozen=True)
class DataSource:
    """The resolved task folders, and whether they are the synthetic default."""

    roots: dict[str, Path]
    synthetic: bool
    description: str


def find_task_folder(task: Task, data_root: Path) -> Path:
    """The task's folder below ``data_root``, accepting the known name variants."""
    if not data_root.is_dir():
        raise DataError.at(data_root.resolve(), "data root not found")
    for name in task.folder_names:
        if (data_root / name).is_dir():
            return data_root / name
    wanted = {name.replace("-", "_") for name in task.folder_names}
    for child in sorted(data_root.iterdir()):
        if child.is_dir() and child.name.lower().replace("-", "_") in wanted:
            return child
    raise DataError.at(data_root, f"no {task.title} folder (looked for {', '.join(task.folder_names)})")


def resolve_data(data: DataConfig, tasks: list[str] | None = None) -> DataSource:
    """Task folders for ``tasks`` (default: all), from the config.

    Precedence: per-task roots, then ``data.root``, then ``./data``; when none
    is given and ``./data`` is absent (or ``data.synthetic`` is set, or the root
    is ``synthetic``), the synthetic default is written to the cache and used.
    """
    names = tasks or list(TASKS)
    for name in data.roots:
        if name not in TASKS:
            raise DataError.at(name, f"unknown task in data roots (known: {', '.join(TASKS)})")
    if data.synthetic and ((data.root is not None and data.root != SYNTHETIC_ROOT) or data.roots):
        named = ([f"data.root {data.root}"] if data.root is not None and data.root != SYNTHETIC_ROOT else []) + [
            f"data.roots.{name} {path}" for name, path in data.roots.items()]
        raise DataError(f"data.synthetic is true and {', '.join(named)} is given: they contradict each other "
                        "(set data.synthetic false to read the folder, or remove the folder to use synthetic data)")
    if data.synthetic or data.root == SYNTHETIC_ROOT or (data.root is None and not data.roots
                                                          and not DEFAULT_DATA_ROOT.is_dir()):
        from scenarios.synthetic import ensure_synthetic

        root = ensure_synthetic(seed=data.synthetic_seed, size=data.synthetic_size, n_train=data.synthetic_train)
        roots = {name: find_task_folder(TASKS[name], root) for name in names}
        why = "" if data.synthetic or data.root == SYNTHETIC_ROOT else "no --data-root given and no ./data folder: "
        return DataSource(roots, True, f"{why}synthetic default (seed {data.synthetic_seed}) in {root}")
    base = Path(data.root) if data.root else DEFAULT_DATA_ROOT
    roots: dict[str, Path] = {}
    for name in names:
        if name in data.roots:
            override = Path(data.roots[name])
            if not override.is_dir():
                raise DataError.at(override.resolve(), f"{TASKS[name].title} root not found")
            roots[name] = override
        else:
            roots[name] = find_task_folder(TASKS[name], base)
    return DataSource(roots, False, str(base))
