"""Why EWC's default lambda is large: importances (mean squared gradients) are
tiny, so small lambdas change nothing. Sweeps lambda on the smoke config and
prints the segmentation mIoU after each stage next to naive's.

    python bench/ewc_lambda.py [--lambdas 0,100,1e3,1e4,1e5,1e6] [--config experiments/smoke.yaml]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common  # noqa: F401  (quiet imports)
import pandas as pd

from cl_bench.config import load_config
from cl_bench.experiment.runner import run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lambdas", default="0,100,1e3,1e4,1e5,1e6")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for value in (float(v) for v in args.lambdas.split(",")):
            config = load_config(args.config)
            config.strategy.name, config.strategy.options = "ewc", {"ewc_lambda": value}
            config.run.out, config.run.seed, config.run.logger = out, args.seed, "none"
            outcome = run_experiment(config, log=lambda _: None)
            matrix = pd.read_csv(outcome.run_dir / "matrix_mIoU.csv", index_col=0)["seg"]
            summary = outcome.summary["tasks"]
            rows.append({"ewc_lambda": value, **{f"seg mIoU {k}": round(v, 4) for k, v in matrix.items()},
                         "seg drop %": round(summary["seg"]["drop_rel_pct"], 1),
                         "det final mAP50": round(outcome.summary["secondary"]["tasks"]["det"]["final"], 4),
                         "cls final top1": round(summary["cls"]["final"], 4)})
            print(rows[-1], flush=True)
    print(f"\nEWC lambda sweep on {args.config} (seed {args.seed}); lambda 0 is naive fine-tuning:")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
