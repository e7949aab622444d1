"""Scaling sweeps of the PC/BP step-time ratio around bench-mlp.yaml: one factor at a
time -- T, depth (hidden layers), width, batch. Writes a CSV and one plot per factor.

    python benchmarks/sweep.py [--out benchmarks/results] [--quick] [--gradient equilibrium]

PC's weight gradient defaults to ``equilibrium`` here (T inference steps, then the
gradient at the settled states), the step whose cost grows with T; ``--gradient arrival``
times the gradient at the error's first arrival (exact backprop, no inference loop).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import yaml

from pcgraph.train.bench import run_bench

HERE = Path(__file__).resolve().parent
BASE = {"T": 8, "depth": 3, "width": 512, "batch": 256}
SWEEPS = {"T": [1, 2, 4, 8, 16, 32], "depth": [2, 4, 8], "width": [128, 512, 2048], "batch": [32, 256, 1024]}


def mlp_spec(T: int, depth: int, width: int, batch: int, gradient: str = "equilibrium") -> str:
    """bench-mlp with the given T, number of hidden layers, width and batch."""
    base = yaml.safe_load((HERE / "bench-mlp.yaml").read_text())
    nodes = {"image": {"shape": [784], "role": "input", "bind": "image"}}
    edges = []
    prev = "image"
    for i in range(1, depth + 1):
        nodes[f"h{i}"] = {"shape": [width], "family": "gaussian"}
        edges.append({"from": prev, "to": f"h{i}", "activation": "tanh"})
        prev = f"h{i}"
    nodes["label"] = {"shape": [10], "family": "categorical", "role": "target", "bind": "label"}
    edges.append({"from": prev, "to": "label"})
    base.update(name=f"mlp-d{depth}-w{width}", nodes=nodes, edges=edges)
    base["data"]["batch_size"] = batch
    base["train"]["inference"]["steps"] = T
    base["train"].setdefault("weights", {})["gradient"] = gradient
    return yaml.safe_dump(base, sort_keys=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--plot-only", action="store_true", help="redraw sweep.png from sweep.csv")
    ap.add_argument("--gradient", default="equilibrium", choices=["arrival", "equilibrium"], help="PC's weight gradient")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        with open(out / "sweep.csv") as f:
            rows = [{k: (v if k == "factor" else float(v)) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
        for r in rows:
            for k in BASE:
                r[k] = int(r[k])
        plot(rows, out)
        return 0
    rows = []
    for factor, values in SWEEPS.items():
        for v in values:
            cfg = dict(BASE, **{factor: v})
            big = cfg["width"] * cfg["batch"] * cfg["depth"] * max(cfg["T"], 8) > 512 * 256 * 3 * 8 * 4
            steps = 3 if args.quick else (8 if big else 20)
            t0 = time.perf_counter()
            r = run_bench(spec_text=mlp_spec(**cfg, gradient=args.gradient), steps=steps, warmup=2 if args.quick else 3, rounds=2, memory=not args.no_memory)
            row = {"factor": factor, **cfg, **{k: r[k] for k in ("bp_step_ms", "pc_step_ms", "ratio", "compile_s")}}
            if "bp_peak_mb" in r:
                row.update(bp_peak_mb=r["bp_peak_mb"], pc_peak_mb=r["pc_peak_mb"])
            rows.append(row)
            print(json.dumps(row), f"({time.perf_counter() - t0:.0f} s)", flush=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    plot(rows, out)
    return 0


def plot(rows, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, factor in zip(axes, SWEEPS):
        pts = [(r[factor], r["ratio"]) for r in rows if r["factor"] == factor]
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "o-", label="PC / BP step time")
        ax.axhline(3.5, color="grey", ls="--", lw=1, label="3.5")
        if factor == "T":
            base = [r["ratio"] for r in rows if r["factor"] == "T" and r["T"] == 1][0]
            ax.plot(xs, [base + 0.4 * (x - 1) for x in xs], ":", color="tab:red", label="slope 0.4 per step")
        if factor != "T":  # the cost grows linearly in T: keep that axis linear
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel(factor)
        ax.set_ylabel("ratio")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("PC step / BP step around bench-mlp (T=8, 3 hidden layers, width 512, batch 256)")
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
