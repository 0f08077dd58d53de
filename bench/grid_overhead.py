"""Grid overhead: the same N smoke runs one after the other in this process, then through the
Ray grid with 1 worker, then with 2 workers; every run on one thread (threads spin when the
cores are shared, which would measure the neighbours, not the grid). Each way writes
into its own fresh results folder. Goal: grid with 1 worker / sequential <= 1.10 for runs of
about a minute; Ray's start is timed apart (a grid pays it once). The ways alternate over
``--repeats`` tries; the table gives each try and the median.

    python bench/grid_overhead.py [--runs 2] [--epochs 36] [--repeats 2]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

# One thread per run in every way, set before numpy and torch load (so they load in main()): Ray gives its
# workers OMP_NUM_THREADS=1 for a 1-CPU task, and this process must match (its BLAS threads too).
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the local Ray listens on loopback only

SMOKE = Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="smoke runs (naive, seeds 0..N-1)")
    parser.add_argument("--repeats", type=int, default=2, help="tries of each way, alternating")
    parser.add_argument("--epochs", type=int, default=36,
                        help="epochs per experience of each run (36: about a minute a run here)")
    args = parser.parse_args()

    import _common  # noqa: F401  (quiet imports)
    import pandas as pd
    import ray

    from cl_bench.config import apply_set, load_config
    from cl_bench.experiment.runner import run_experiment
    from cl_bench.grid.driver import GridOptions, run_grid
    from cl_bench.grid.plan import GridSpec, plan_runs
    from scenarios.benchmark import build_benchmark

    cpus = os.cpu_count() or 1
    base = load_config(SMOKE)
    runs = plan_runs(GridSpec(["naive"], list(range(args.runs)), [list(base.data.order)],
                              [f"train.epochs={args.epochs}"]), lambda a: apply_set(base, a))
    build_benchmark(runs[0].config)  # the synthetic data is written once, before any timing
    folder = Path(tempfile.mkdtemp(prefix="grid_overhead_"))
    began = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    start = time.perf_counter() - began

    walls: dict[str, list[float]] = {"sequential": [], "1 worker": [], "2 workers": []}
    for repeat in range(args.repeats):  # the ways alternate, so a change in the machine's load hits each
        for way in walls if repeat % 2 == 0 else reversed(walls):
            out = folder / f"{way.replace(' ', '_')}_{repeat}"
            began = time.perf_counter()
            if way == "sequential":
                for run in runs:
                    run.config.run.out, run.config.run.logger = str(out), "none"
                    run_experiment(run.config, log=lambda line: None)
            else:
                statuses = run_grid(runs, GridOptions(out, max_concurrent=int(way[0])), progress=io.StringIO())
                assert all(s.state == "done" for s in statuses), [s.error for s in statuses]
            walls[way].append(time.perf_counter() - began)
    ray.shutdown()

    sequential = statistics.median(walls["sequential"])
    rows = [{"way": "sequential, one process" if way == "sequential" else f"Ray grid, {way}",
             "wall s (median)": statistics.median(times), "each try s": " ".join(f"{t:.1f}" for t in times),
             "per run s": statistics.median(times) / len(runs), "vs sequential": statistics.median(times) / sequential}
            for way, times in walls.items()]
    rows.append({"way": "Ray start (once per grid, not in the rows above)", "wall s (median)": start})
    print(f"{len(runs)} naive smoke runs ({args.epochs} epoch(s) per experience, 1 thread each) on {cpus} CPUs; "
          f"results in {folder}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.2f}", na_rep=""))


if __name__ == "__main__":
    main()
