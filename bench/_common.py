"""Shared set-up of the bench scripts (not a test): path, quiet imports, a benchmark to time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_bench.cli.arguments import quiet_third_party_warnings  # noqa: E402

quiet_third_party_warnings()

from cl_bench.config import Config, DataConfig  # noqa: E402


def data_config(data_root: str | None, image_size: int) -> DataConfig:
    """The real minis when given or in $CL_BENCH_REAL_DATA, else the synthetic default."""
    root = data_root or os.environ.get("CL_BENCH_REAL_DATA")
    if root and Path(root).is_dir():
        return DataConfig(root=root, image_size=image_size)
    return DataConfig(synthetic=True, image_size=image_size)


def config(data_root: str | None, image_size: int) -> Config:
    return Config(data=data_config(data_root, image_size))
