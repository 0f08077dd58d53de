"""``run_bench.py export``: copy one run's model.pt (the file eval.py reads) with a model card.

The run is named (``--run RUN_ID``) or picked by ``selection.select_run``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cl_bench.atomic import atomic_path, write_bytes, write_text
from cl_bench.config import DataConfig
from cl_bench.devices import describe
from cl_bench.digest import sha256_file
from cl_bench.errors import CLBenchError
from cl_bench.model.challenge_rules import check_model
from cl_bench.model.weights_file import load_weights
from cl_bench.report.collect import Results
from cl_bench.report.selection import SELECTION_RULE, pass_column, scores
from cl_bench.results import primary_metrics
from cl_bench.rules import NO_REFERENCE, OWN_BASE, SINGLE_TASK_RULE, rule_definition
from scenarios.layout import DEFAULT_DATA_ROOT, SYNTHETIC_ROOT
from scenarios.synthetic import synthetic_path


def card_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.card.json")


def eval_command(config: dict[str, Any], source: str, out: Path) -> str:
    """The eval.py command that evaluates ``out`` on the data (and split) the run with ``config`` used
    (``source``: the run's data description, summary.json's ``data``)."""
    data = {**dataclasses.asdict(DataConfig()), **config.get("data", {})}
    defaults = DataConfig()
    synthetic_settings = ("synthetic_seed", "synthetic_size", "synthetic_train")
    if "synthetic default (" in source:
        if all(data[key] == getattr(defaults, key) for key in synthetic_settings):
            root = SYNTHETIC_ROOT
        else:
            root = str(synthetic_path(data["synthetic_seed"], data["synthetic_size"], data["synthetic_train"]))
    else:
        root = data["root"] or str(DEFAULT_DATA_ROOT)
    roots = "".join(f" --{task}-root {shlex.quote(str(path))}" for task, path in data["roots"].items())
    split = "" if data["test_split"] == "val" else f" --split {shlex.quote(data['test_split'])}"
    return f"python eval.py --weights {shlex.quote(str(out))} --data_root {shlex.quote(root)}{roots} --tasks all{split}"


def rule_verdicts(results: Results, run_id: str) -> dict[str, Any]:
    """Both rules' verdicts of a run as the results folder gives them today (the single_task rule against
    the folder's single-task reference of the run's setting)."""
    run = results.runs.set_index("run_id").loc[run_id]
    threshold = float(run["threshold_pct"])
    tasks = {task: metric for task, metric in primary_metrics().items() if task in str(run["order"]).split(",")}

    def number(value: Any) -> float | None:
        return None if pd.isna(value) else float(value)
    own = {"definition": rule_definition(OWN_BASE, threshold),
           "pass": None if run["reference"] else bool(run["pass_own_base"]),
           "tasks": {task: {"base": number(run[f"base_{m}"]), "final": number(run[f"final_{m}"]),
                            "drop_rel_pct": number(run[f"drop_rel_pct_{m}"]),
                            "drop_abs_pts": number(run[f"drop_abs_pts_{m}"])} for task, m in tasks.items()}}
    single = {"definition": rule_definition(SINGLE_TASK_RULE, threshold), "status": run["st_status"],
              "pass": None if pd.isna(run["pass_single_task"]) else bool(run["pass_single_task"]),
              "final_vs_single_task": number(run["final_vs_single_task"])}
    if run["st_status"] != NO_REFERENCE:
        references = results.references.get(run["setting"])
        single["reference_runs"] = [] if references is None else list(references["run_id"])
        single["tasks"] = {task: {"reference": number(run[f"st_reference_{m}"]), "final": number(run[f"final_{m}"]),
                                  "ratio": number(run[f"st_ratio_{m}"]),
                                  "drop_rel_pct": number(run[f"st_drop_rel_pct_{m}"]),
                                  "drop_abs_pts": number(run[f"st_drop_abs_pts_{m}"])} for task, m in tasks.items()}
    return {OWN_BASE: own, SINGLE_TASK_RULE: single}


def export_run(results: Results, run_id: str, out: Path, selection: str, device: torch.device | None,
               rule: str) -> dict[str, Any]:
    """Copy ``run_id``'s model.pt to ``out`` (atomically), write the model card beside it and return it.
    The card's constraint check measures latency when ``device`` is given; ``rule``: the rule the
    selection used (both rules' verdicts are on the card)."""
    if run_id not in results.summaries:
        known = list(results.runs["run_id"])
        listed = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
        raise CLBenchError(f"--run {run_id}: no such finished run in {results.root} (finished: {listed})")
    source = results.root / run_id / "model.pt"
    if not source.is_file():
        raise CLBenchError(f"{source}: the run has no model.pt to export")
    loaded = load_weights(source)  # a broken file stops here, before anything is replaced
    out = Path(out)
    checks = check_model(loaded.model, device or torch.device("cpu"), latency=device is not None,
                         per_task_bn=bool(loaded.bn_stats))
    summary = results.summaries[run_id]
    score = scores(results.runs[results.runs["run_id"] == run_id]).iloc[0]
    card = {
        "weights": out.name,
        "sha256": sha256_file(source),  # the copy's: checked after copying
        "evaluate": eval_command(results.configs[run_id], str(summary.get("data", "")), out),
        "source_run": {"run_id": run_id, "run_dir": str(results.root / run_id), "strategy": summary.get("strategy"),
                       "schedule": summary.get("schedule"), "seed": summary.get("seed"), "order": summary.get("order"),
                       "data": summary.get("data"), "image_size": summary.get("image_size")},
        "selection": {"mode": selection, "rule": rule, "definition": SELECTION_RULE,
                      "score": None if pd.isna(score) else float(score),
                      "candidates": int((~results.runs["reference"]).sum()),
                      "passing": int(((results.runs[pass_column(rule)] == 1) & ~results.runs["reference"]).sum())},
        "rules": rule_verdicts(results, run_id),
        "metrics": {key: summary.get(key) for key in ("threshold_pct", "bwt", "bwt_rel", "mean_normalised_final",
                                                      "metrics", "tasks")},
        "secondary_metrics": {key: summary.get("secondary", {}).get(key) for key in ("metrics", "tasks")},
        "backbone_weights": {key: value for key, value in summary.get("environment", {}).items()
                             if key.startswith("backbone_weights")},
        "params": summary.get("params"),
        "train_time_s": summary.get("train_time_s"),
        "constraints": {"device": describe(device) if device is not None else None,
                        "checks": [{**dataclasses.asdict(c), "status": c.status} for c in checks]},
        "config": results.configs[run_id],
    }
    write_pair(out, source, card_path(out), json.dumps(card, indent=2) + "\n", card["sha256"])
    return card


def write_pair(out: Path, source: Path, card: Path, card_text: str, sha256: str) -> None:
    """Copy ``source`` to ``out`` and write ``card_text`` to ``card`` so that no reader ever finds a card
    beside weights it does not describe: the old card goes first, then the weights are replaced, then the
    new card is written (each atomically). A kill in between leaves weights without a card (export again),
    never a card naming another run; a failed copy puts the old card back beside the old weights."""
    previous = card.read_bytes() if card.is_file() else None
    try:
        card.unlink(missing_ok=True)
    except OSError as error:
        raise CLBenchError(f"{card}: cannot replace the model card ({error.strerror or error})") from None
    try:
        with atomic_path(out) as tmp:
            shutil.copyfile(source, tmp)
            if sha256_file(tmp) != sha256:
                raise CLBenchError(f"{out}: the copy of {source} differs from it (sha256); nothing replaced")
    except BaseException:
        if previous is not None:
            write_bytes(card, previous)
        raise
    write_text(card, card_text)
