"""A run's identity: ``strategy_order_sSEED_hash`` over every setting that
changes results, whether a run folder already holds that run finished, and the
check of the one named setting the config cannot check itself (``check_backbone``).

The hash covers the strategy options resolved (checked, defaults filled in) and then
reduced to the entries that differ from their declared defaults (``canonical_options``:
flat for a strategy alone, per part for a composition, parts at their defaults left
out). Writing an option at its default, writing it flat or nested, or leaving it out
is the same run; any other value is another run. Runs that finished before hashed
their options as written: they keep their ids where they wrote only options away
from their defaults, each a value of its declared type (every run in results/reference;
four of its recipe320 tuning runs, which wrote an option at its default or a float
option as an int, have other ids now: tests/test_strategy_options.py).

The id cannot see a declared default that changed after a run finished (its options
then differ from its record at the same id): ``finished_with`` compares the resolved
options the run recorded with today's and refuses the folder instead of taking it
for this run.

The strategies are imported inside the functions that need their declarations: the
grid's planner and the command line import this module, and the strategies import
Avalanche, which is slow to import."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from cl_bench.config import Config, result_settings
from cl_bench.dataclass_io import check_choice, to_dict
from cl_bench.errors import CLBenchError
from cl_bench.yaml_io import load_yaml


def run_id_for(config: Config) -> str:
    """``strategy_order_sSEED_hash``: the hash covers every setting that changes results (the strategy
    options as ``canonical_options``; a bad option is a CLBenchError line naming it)."""
    values = result_settings(to_dict(config))
    values["strategy"]["options"] = canonical_options(config.strategy.name, config.strategy.options)
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{config.strategy.name}_{'-'.join(config.data.order)}_s{config.run.seed}_{digest}"


def check_backbone(config: Config, where: str = "") -> Config:
    """``config`` when ``model.backbone`` names a backbone of the model's registry, else one CLBenchError line
    naming the key, the value and the known names (``where``: what the key's name starts with, e.g. the config
    file). The registry is the model's, above the config layer that checks every other named setting: every
    path to a run (run_experiment, the grid's planning, the command line) calls this before it makes a folder
    or reads data."""
    from cl_bench.model.backbones import BACKBONES  # here: torchvision is slow to import

    check_choice(config.model.backbone, sorted(BACKBONES), f"{where}.model.backbone" if where else "model.backbone")
    return config


def canonical_options(name: str, options: Any) -> dict[str, Any]:
    """``strategy.options`` of strategy ``name`` in the one form a run id hashes and a run's config.yaml
    records: resolved, then only the entries that differ from their declared defaults
    (``StrategySpec.canonical``)."""
    from strategies import get_strategy  # here, not at the top: see the module docstring

    return get_strategy(name).canonical(options)


def canonical_config(values: Any) -> Any:
    """A config read as a dict, its strategy options as ``canonical_options``, the form a run's config.yaml
    records (as they are when unusable)."""
    strategy = values.get("strategy") if isinstance(values, dict) else None
    if not (isinstance(strategy, dict) and isinstance(strategy.get("name"), str)):
        return values
    try:
        options = canonical_options(strategy["name"], strategy.get("options") or {})
    except CLBenchError:
        return values
    return {**values, "strategy": {**strategy, "options": options}}


def resolved_options(config: Config) -> dict[str, Any]:
    """The strategy's options with its defaults filled in, as a finished run records them."""
    from strategies import get_strategy  # here, not at the top: see the module docstring

    return json.loads(json.dumps(to_dict(get_strategy(config.strategy.name).options(config.strategy.options))))


def finished_with(run_dir: Path, config_text: str, options: dict[str, Any]) -> bool:
    """True when ``run_dir`` holds a finished run whose settings (logging and output folder aside, strategy
    options compared as ``canonical_options``) are these.

    The run id covers the options that differ from today's declared defaults, not the defaults
    themselves: a finished run that recorded other resolved ``options`` (a default changed since it ran)
    is a CLBenchError, never taken for this run."""
    if not ((run_dir / "summary.json").is_file() and (run_dir / "config.yaml").is_file()):
        return False
    try:
        stored = load_yaml((run_dir / "config.yaml").read_text())
    except yaml.YAMLError:
        return False
    if not (isinstance(stored, dict)
            and result_settings(canonical_config(stored)) == result_settings(canonical_config(load_yaml(config_text)))):
        return False
    try:
        recorded = json.loads((run_dir / "summary.json").read_text()).get("strategy_options")
    except (OSError, ValueError, AttributeError):
        return True  # an unreadable summary is the report's to flag; runs before the record have none
    if recorded is not None and recorded != options:
        raise CLBenchError(f"{run_dir}: finished with strategy options {_flat(recorded)}, but the defaults now "
                           f"give {_flat(options)} (the same run id: it covers only options away from the "
                           f"defaults); to re-run it, delete the folder and its runs.csv row, or write to another "
                           f"results folder (run.out)")
    return True


def _flat(options: dict[str, Any]) -> str:
    return json.dumps(options, sort_keys=True)
