"""Seeds fixed before a group's runs, and the flag on seeds added after its results were seen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cl_bench.cli import build_parser
from cl_bench.cli.grid_command import plan_from_args, plan_groups
from cl_bench.config import apply_set, load_config
from cl_bench.dataclass_io import to_dict
from cl_bench.errors import CLBenchError
from cl_bench.rules import setting_key
from cl_bench.seed_plan import PLAN_FILE, group_key, read_plan, record_plan, seeds_note
from cl_bench.yaml_io import load_yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.yaml"


def test_seeds_added_before_any_result_join_the_plan_and_after_one_are_an_extension(tmp_path):
    assert record_plan(tmp_path, [("k", "mas+der", [0], [])]) == []
    assert record_plan(tmp_path, [("k", "mas+der", [0, 1, 2], [])]) == []  # nothing finished yet: still the plan
    assert read_plan(tmp_path)["k"]["planned"] == [0, 1, 2]
    assert record_plan(tmp_path, [("k", "mas+der", [1, 2], [0])]) == []  # within the plan
    notes = record_plan(tmp_path, [("k", "mas+der", [3, 4], [0])])
    assert notes == ["mas+der: seeds 3, 4 extend the plan 0, 1, 2 after results of seeds 0 exist; "
                     "the report flags this group"]
    entry = read_plan(tmp_path)["k"]
    assert entry["extensions"][0]["seeds"] == [3, 4] and entry["extensions"][0]["after_results_of"] == [0]
    assert record_plan(tmp_path, [("k", "mas+der", [0, 3], [0, 1, 2, 3])]) == []  # already recorded
    assert seeds_note(entry) == "planned 0,1,2; 3,4 added after results of 0"
    assert seeds_note(None) == "no plan recorded"


def test_an_unreadable_plan_is_a_one_line_error(tmp_path):
    (tmp_path / PLAN_FILE).write_text("[1, 2")
    with pytest.raises(CLBenchError, match=f"{PLAN_FILE}: unreadable seed plan"):
        read_plan(tmp_path)


def test_a_grid_file_fixes_each_strategys_seeds_before_the_flags_run_some(tmp_path):
    grid = tmp_path / "grid.yaml"
    smoke = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"
    grid.write_text(f"config: {json.dumps(str(smoke))}\nstrategies: [naive, ewc]\nseeds: 0-1\n"
                    "strategy_seeds:\n  ewc: 0-3\n")
    spec, runs, _ = plan_from_args(build_parser("grid").parse_args(["grid", str(grid), "--out", str(tmp_path)]))
    assert sorted((r.config.strategy.name, r.config.run.seed) for r in runs) == [
        ("ewc", 0), ("ewc", 1), ("ewc", 2), ("ewc", 3), ("naive", 0), ("naive", 1)]
    assert spec.declared == {"naive": [0, 1], "ewc": [0, 1, 2, 3]}
    # --seeds runs some seeds now; the grid file's seeds stay the plan
    spec, runs, _ = plan_from_args(build_parser("grid").parse_args(["grid", str(grid), "--seeds", "0",
                                                                   "--out", str(tmp_path)]))
    assert len(runs) == 2 and spec.declared == {"naive": [0, 1], "ewc": [0, 1, 2, 3]}


def test_groups_differing_only_in_what_single_task_ignores_keep_their_own_plans():
    """Part rates and the BN policy leave the single_task reference's key, never a group's identity."""
    plain = load_config(SMOKE)
    keys, references = set(), set()
    for change in ([], ["train.part_lr_per_task={det: {backbone: 0}}"], ["train.bn_policy=per_task"]):
        config = to_dict(apply_set(plain, change))
        keys.add(group_key(config))
        references.add(setting_key(config))
    assert len(keys) == 3 and len(references) == 1


def test_a_grid_plans_each_group_under_the_key_its_finished_runs_record(tmp_path):
    # the Lite0 recipe writes der's options nested (der: {mem_size: ...}), as lwf+der takes them; a run of der
    # alone records them flat in its config.yaml, which the report keys its groups by
    grid = ROOT / "experiments" / "grids" / "reference_lite0.yaml"
    spec, runs, _ = plan_from_args(build_parser("grid").parse_args(["grid", str(grid), "--out", str(tmp_path)]))
    keys = {run.run_id: key for run in runs for key, *_ in plan_groups([run], spec, tmp_path)}
    finished = {run_id: ROOT / "results" / "reference_lite0" / run_id / "config.yaml" for run_id in keys}
    recorded = {run_id: group_key(load_yaml(path.read_text())) for run_id, path in finished.items() if path.is_file()}
    assert {run_id.split("_")[0] for run_id in recorded} == {"lwf+der", "der"}
    assert {run_id: keys[run_id] for run_id in recorded} == recorded
