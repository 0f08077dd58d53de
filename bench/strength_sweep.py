"""A strategy's strength against forgetting, the way bench/ewc_lambda.py shows
EWC's lambda: sweeps one option of one strategy on the smoke config and prints
the segmentation mIoU after each stage, the seg drop and the other tasks'
final metrics (naive first, for reference).

    python bench/strength_sweep.py --strategy mas --option mas_lambda --values 0.1,1,10 [--epochs 20]
    python bench/strength_sweep.py --strategy der --option alpha --values 0.3,1,3
    python bench/strength_sweep.py --strategy si --option c --values 0.1,1,10
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common  # noqa: F401  (quiet imports)
import pandas as pd

from cl_bench.config import load_config
from cl_bench.experiment.runner import run_experiment


def row(outcome, label: str) -> dict:
    matrix = pd.read_csv(outcome.run_dir / "matrix_mIoU.csv", index_col=0)["seg"]
    tasks = outcome.summary["tasks"]
    return {"run": label, **{f"seg mIoU {k}": round(v, 4) for k, v in matrix.items()},
            "seg drop %": round(tasks["seg"]["drop_rel_pct"], 1),
            "det final mAP50": round(outcome.summary["secondary"]["tasks"]["det"]["final"], 4),
            "cls final top1": round(tasks["cls"]["final"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--option", required=True, help="the option swept (strategy.options.<option>)")
    parser.add_argument("--values", required=True, help="comma-separated values")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "experiments" / "smoke.yaml"))
    parser.add_argument("--epochs", type=int, help="epochs per experience (default: the config's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name, value in [("naive", None), *((args.strategy, float(v)) for v in args.values.split(","))]:
            config = load_config(args.config)
            config.strategy.name = name
            config.strategy.options = {} if value is None else {args.option: value}
            config.run.out, config.run.seed, config.run.logger = out, args.seed, "none"
            if args.epochs:
                config.train.epochs = args.epochs
            rows.append(row(run_experiment(config, log=lambda _: None),
                            "naive" if value is None else f"{args.option}={value:g}"))
            print(rows[-1], flush=True)
    print(f"\n{args.strategy} {args.option} sweep on {args.config} (seed {args.seed}):")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
