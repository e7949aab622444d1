"""Where PC's weight gradients point, at a given set of weights.

Loads a run's weights (e.g. a BP-trained one), takes one test batch, and compares per
parameter the PC weight gradient after T inference steps with the BP gradient of the
same loss, and, for graphs with priors (a VAE), with the BP gradient's two parts:
the targets' terms (reconstruction) and the prior terms. Same noise for both.

This is ``pcgraph diagnose`` (pcgraph/train/diagnose.py) with this experiment's
fixed inference settings as options: the state optimiser, its lr, T and the energy
replace the spec's (defaults: sgd, lr 0.1, T = 32, F_KL, a batch of 256).

    python experiments/pc_gradients.py RUN_DIR --data-dir DATA [--steps T] [--lr LR]
        [--optimizer sgd|adam] [--energy kl|gaussian] [--batch N] [--fresh] [--set ...]
"""

from __future__ import annotations

import argparse

from pcgraph.train.diagnose import run_diagnose
from pcgraph.train.diagnose_report import format_report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="state optimizer")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument(
        "--fresh", action="store_true", help="use freshly initialised weights (the spec's seed), not the checkpoint's"
    )
    ap.add_argument("--energy", choices=["kl", "gaussian"], default="kl")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()

    overrides = [
        *args.set,
        f"train.energy={args.energy}",
        f"train.inference.optimizer.type={args.optimizer}",
        f"train.inference.optimizer.lr={args.lr}",
    ]
    r = run_diagnose(args.run, overrides, split="test", batch_size=args.batch, steps=args.steps, data_dir=args.data_dir, fresh=args.fresh)
    print(format_report(r, title=f"{args.run} ({r['weights']} weights, test split)"))


if __name__ == "__main__":
    main()
