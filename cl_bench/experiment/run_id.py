"""A run's identity: ``strategy_order_sSEED_hash`` over every setting that
changes results, and whether a run folder already holds that run finished.

The hash covers the strategy options as written, in one layout (``written_options``:
flat for a strategy alone, per part for a composition), not the resolved ones with
defaults filled in: every finished run keeps its id (theirs hashed what they wrote).
A default that changed since is caught by ``finished_with`` instead."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from cl_bench.config import Config, result_settings
from cl_bench.dataclass_io import lift, to_dict
from cl_bench.errors import CLBenchError
from cl_bench.yaml_io import load_yaml


def run_id_for(config: Config) -> str:
    """``strategy_order_sSEED_hash``: the hash covers every setting that changes results."""
    values = result_settings(to_dict(config))
    values["strategy"]["options"] = written_options(config.strategy.name, config.strategy.options)
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{config.strategy.name}_{'-'.join(config.data.order)}_s{config.run.seed}_{digest}"


def written_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``strategy.options`` as written, in the one layout a run id hashes (``StrategySpec.written``'s, without
    importing the strategies): a strategy alone takes ``<name>.<key>`` as ``<key>``."""
    if "+" in name or not isinstance(options, dict):  # strategies.registry.SEPARATOR: a composition, per part
        return options
    return lift(options, name, f"strategy.options ({name})")


def _one_layout(values: Any) -> Any:
    """A config read as a dict, its strategy options in ``written_options``' layout."""
    strategy = values.get("strategy") if isinstance(values, dict) else None
    if not (isinstance(strategy, dict) and isinstance(strategy.get("name"), str)):
        return values
    try:
        options = written_options(strategy["name"], strategy.get("options") or {})
    except CLBenchError:
        return values
    return {**values, "strategy": {**strategy, "options": options}}


def resolved_options(config: Config) -> dict[str, Any]:
    """The strategy's options with its defaults filled in, as a finished run records them."""
    from strategies import get_strategy  # here: the grid's planner reads this module, Avalanche is slow to import

    return json.loads(json.dumps(to_dict(get_strategy(config.strategy.name).options(config.strategy.options))))


def finished_with(run_dir: Path, config_text: str, options: dict[str, Any]) -> bool:
    """True when ``run_dir`` holds a finished run whose settings (logging and output folder aside) are these.

    The run id covers the strategy options a config sets, not the defaults of the others: a finished
    run that recorded other resolved ``options`` (a default changed since) is a CLBenchError, never
    taken for this run."""
    if not ((run_dir / "summary.json").is_file() and (run_dir / "config.yaml").is_file()):
        return False
    try:
        stored = load_yaml((run_dir / "config.yaml").read_text())
    except yaml.YAMLError:
        return False
    if not (isinstance(stored, dict)
            and result_settings(_one_layout(stored)) == result_settings(_one_layout(load_yaml(config_text)))):
        return False
    try:
        recorded = json.loads((run_dir / "summary.json").read_text()).get("strategy_options")
    except (OSError, ValueError, AttributeError):
        return True  # an unreadable summary is the report's to flag; runs before the record have none
    if recorded is not None and recorded != options:
        raise CLBenchError(f"{run_dir}: finished with strategy options {_flat(recorded)}, but the defaults now "
                           f"give {_flat(options)}; to re-run it, delete the folder and its runs.csv row, "
                           f"or set the options in strategy.options (a new run id)")
    return True


def _flat(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True)
