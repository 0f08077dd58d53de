"""The seeds each group of runs was planned with, before its results were seen.

A comparison is honest when its seeds are fixed before running it. ``grid`` records, per group
(strategy, options and every other result-changing setting but the seed), the seeds its grid file
declares the first time the group is planned; seeds asked for later are added to that plan while
the group has no finished run, and recorded as an *extension* once it has one (seeds added after a
look at results). The report flags a group with an extension. The record is ``seed_plan.json`` in
the results folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from cl_bench.atomic import write_text
from cl_bench.errors import CLBenchError, first_line
from cl_bench.rules import settings_but_seed
from cl_bench.yaml_io import load_yaml

PLAN_FILE = "seed_plan.json"


def group_key(config: Mapping[str, Any]) -> str:
    """A group's identity: its strategy and options and every other result-changing setting but the
    seed (a config.yaml as a dict)."""
    strategy = config.get("strategy") or {}
    text = json.dumps([strategy.get("name"), strategy.get("options") or {}, settings_but_seed(config)],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_plan(out: Path) -> dict[str, dict[str, Any]]:
    """The groups of ``out/seed_plan.json`` by ``group_key`` ({} without the file)."""
    path = Path(out) / PLAN_FILE
    if not path.is_file():
        return {}
    try:
        groups = json.loads(path.read_text())["groups"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CLBenchError(f"{path}: unreadable seed plan ({first_line(error)})") from None
    if not isinstance(groups, dict):
        raise CLBenchError(f"{path}: 'groups' is not a mapping")
    return groups


def record_plan(out: Path, groups: Iterable[tuple[str, str, list[int], list[int]]]) -> list[str]:
    """Record ``(key, strategy, declared seeds, finished seeds)`` per group being planned into
    ``out/seed_plan.json``; returns one line per extension (seeds beyond the plan of a group that
    already has results)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    messages = []
    with FileLock(str(out / PLAN_FILE) + ".lock"):
        plan = read_plan(out)
        for key, strategy, declared, finished in groups:
            entry = plan.setdefault(key, {"strategy": strategy, "planned": sorted(declared), "planned_at": now,
                                          "extensions": []})
            known = set(entry["planned"]) | {s for extension in entry["extensions"] for s in extension["seeds"]}
            new = sorted(set(declared) - known)
            if not new:
                continue
            if finished:
                entry["extensions"].append({"seeds": new, "at": now, "after_results_of": sorted(finished)})
                messages.append(f"{strategy}: seeds {', '.join(map(str, new))} extend the plan "
                                f"{', '.join(map(str, entry['planned']))} after results of seeds "
                                f"{', '.join(map(str, sorted(finished)))} exist; the report flags this group")
            else:
                entry["planned"] = sorted(known | set(new))
        write_text(out / PLAN_FILE, json.dumps({"groups": plan}, indent=2, sort_keys=True) + "\n")
    return messages


def finished_seeds(out: Path) -> dict[str, list[int]]:
    """The seeds of the finished runs (rows of ``out/runs.csv``) of each group, by ``group_key``."""
    runs_csv = Path(out) / "runs.csv"
    if not runs_csv.is_file():
        return {}
    seeds: dict[str, list[int]] = {}
    with open(runs_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                config = load_yaml((Path(out) / (row.get("run_id") or "") / "config.yaml").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(config, dict):
                seeds.setdefault(group_key(config), []).append(int((config.get("run") or {}).get("seed", 0)))
    return {key: sorted(set(values)) for key, values in seeds.items()}


def seeds_note(entry: Mapping[str, Any] | None) -> str:
    """How a group's seeds were chosen, for the report: ``planned 0-2``, with each extension."""
    if entry is None:
        return "no plan recorded"
    text = f"planned {','.join(map(str, entry['planned']))}"
    for extension in entry.get("extensions", []):
        text += (f"; {','.join(map(str, extension['seeds']))} added after results of "
                 f"{','.join(map(str, extension['after_results_of']))}")
    return text
