"""One benchmark case in a fresh process inside a peer's environment; prints one JSON line.

    python case.py --framework pcx|fabricpc --method pc|bp --steps 30 --warmup 5

Measured as ``pcgraph bench`` measures its own steps:

* first_call_s: from building the model, optimiser and batch to the end of the first
  training step (jit compilation included);
* peak_mb: VmHWM - VmRSS over the first three steps, VmRSS read after the model,
  optimiser state and batch exist and just before the first step (VmHWM reset there
  through /proc/self/clear_refs); for jit frameworks this includes what XLA needs to
  compile the step;
* step_ms: median over ``steps`` steps after ``warmup`` further steps, each timed
  alone up to ``jax.block_until_ready`` on its result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path


def status_mb(key: str) -> float:
    """VmRSS or VmHWM of this process, in MiB (nan where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(build, steps: int, warmup: int, sync) -> dict:
    """Time ``build()`` + the first step, the memory of the first three steps, then the steady steps."""
    t0 = time.perf_counter()
    step = build()
    base = status_mb("VmRSS")
    reset_hwm()
    sync(step())
    first = time.perf_counter() - t0
    for _ in range(2):
        sync(step())
    peak = status_mb("VmHWM") - base
    for _ in range(warmup):
        sync(step())
    times = []
    for _ in range(steps):
        a = time.perf_counter()
        sync(step())
        times.append(time.perf_counter() - a)
    return {"step_ms": statistics.median(times) * 1e3, "first_call_s": first, "peak_mb": max(0.0, peak), "steps": steps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--framework", choices=("pcx", "fabricpc"), required=True)
    ap.add_argument("--method", choices=("pc", "bp"), required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import jax

    import peer_models as pm

    def build():
        weights = pm.init_weights(args.seed)
        x, y = pm.random_batch(args.seed)
        return pm.CASES[args.framework](args.method, weights, x, y)

    result = measure(build, args.steps, args.warmup, jax.block_until_ready)
    result |= {
        "framework": args.framework,
        "method": args.method,
        "versions": {"jax": jax.__version__, "jaxlib": version("jaxlib"), args.framework: version(args.framework)},
        "cpus": len(os.sched_getaffinity(0)),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
