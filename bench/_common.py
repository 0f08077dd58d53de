"""Shared set-up of the bench scripts (not a test): quiet imports, a benchmark to time."""

from __future__ import annotations

import os
from pathlib import Path

from cl_bench.cli.arguments import quiet_third_party_warnings
from cl_bench.config import Config, DataConfig

quiet_third_party_warnings()  # before any script imports Avalanche (neither import above does)


def data_config(data_root: str | None, image_size: int) -> DataConfig:
    """The real minis when given or in $CL_BENCH_REAL_DATA, else the synthetic default."""
    root = data_root or os.environ.get("CL_BENCH_REAL_DATA")
    if root and Path(root).is_dir():
        return DataConfig(root=root, image_size=image_size)
    return DataConfig(synthetic=True, image_size=image_size)


def config(data_root: str | None, image_size: int) -> Config:
    return Config(data=data_config(data_root, image_size))
