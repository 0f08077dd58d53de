"""Shared fixtures: a private cache, the synthetic default, real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cl_bench.cli import quiet_third_party_warnings

quiet_third_party_warnings()


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Every test, module fixtures included, writes caches (synthetic data,
    downloads) below the session's temp folder, never the user's cache."""
    previous = os.environ.get("CL_BENCH_CACHE")
    os.environ["CL_BENCH_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    yield
    if previous is None:
        os.environ.pop("CL_BENCH_CACHE", None)
    else:
        os.environ["CL_BENCH_CACHE"] = previous


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic dataset (64 px images) in the challenge layout."""
    from scenarios.synthetic import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "data", seed=0, size=64, n_train=12, n_val=6)


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """``$CL_BENCH_REAL_DATA`` (the real minis); tests using it skip when it is absent."""
    value = os.environ.get("CL_BENCH_REAL_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("real data not available (set CL_BENCH_REAL_DATA)")
    return Path(value)
