"""Shared fixtures: a private cache, the synthetic default, real data when present."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per test worker (and per process a test starts): two workers of two threads on
    # two cores spin in each other's OpenMP barriers and run several times slower, not half as fast
    os.environ["OMP_NUM_THREADS"] = "1"

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from cl_bench.cli.arguments import quiet_third_party_warnings  # noqa: E402

# Ray started by the tests (and the worker processes they spawn) stays on the loopback
# interface, as Ray does on a laptop, instead of the machine's network address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

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


def _folder_from(variable: str, what: str) -> Path:
    value = os.environ.get(variable)
    if not value or not Path(value).is_dir():
        pytest.skip(f"{what} not available (set {variable})")
    return Path(value)


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """``$CL_BENCH_REAL_DATA`` (the real minis); tests using it skip when it is absent."""
    return _folder_from("CL_BENCH_REAL_DATA", "real data")


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """``$CL_BENCH_WEIGHTS`` (ImageNet backbone files); tests using it skip when it is absent."""
    return _folder_from("CL_BENCH_WEIGHTS", "ImageNet weights")
