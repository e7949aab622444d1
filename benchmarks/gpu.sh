#!/usr/bin/env bash
# GPU measurements for docs/performance.md on one CUDA card, in under 10 minutes:
#  1. bench-mlp side by side: BP, PC with the arrival gradient, PC with T = 8
#     equilibrium steps (sync and the default inference), eager and with the whole
#     training step -- T loop included -- captured by torch.compile mode
#     "reduce-overhead" (CUDA graphs);
#  2. the inference loop: benchmarks/inference.py (bench-mlp: default inference against
#     the plain synchronous step; bench-small: inference steps per second against a
#     plain torch loop, batch 32 and 1);
#  3. bench-lm and the CNN (specs/fashion-cnn.yaml), eager, both gradients.
# Ends with one table (also written to OUT_DIR/table.md).
#   benchmarks/gpu.sh [--dry-run] [OUT_DIR]
# --dry-run: no CUDA needed (OUT_DIR defaults to a temporary folder); checks that every spec, override and option parses, runs
# each case for one step on the CPU with tiny counts, and builds the table from that.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
out=${1:-$([ $dry = 1 ] && echo "${TMPDIR:-/tmp}/pcgraph-gpu-dry-run" || echo benchmarks/results/gpu)}
mkdir -p "$out"
PY=${PYTHON:-python}
# every case names its gradient: the defaults change
ARR="--set train.weights.gradient=arrival"
EQ="--set train.weights.gradient=equilibrium"
SYNC="$EQ --set train.inference.schedule=sync"
if [ $dry = 1 ]; then
  device=cpu; steps_scale=0; echo "dry run: CPU, one step per case" | tee "$out/gpu.txt"
else
  device=cuda; steps_scale=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt" || exit 1
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
start=$SECONDS

run() {  # name, seconds allowed, steps on the card, then pcgraph bench arguments
  local name=$1 limit=$2 steps=$3; shift 3
  if [ $dry = 1 ]; then steps=1; fi
  echo "== $name ($(( SECONDS - start )) s so far)"
  local extra=()
  if [ $dry = 1 ]; then extra=(--warmup 0 --rounds 1); fi
  timeout "$limit" $PY -m pcgraph bench "$@" --steps "$steps" "${extra[@]}" --device "$device" --no-memory --json \
    > "$out/$name.log" 2>&1 && tail -1 "$out/$name.log" > "$out/$name.json" \
    || echo "$name failed or ran out of time (see $out/$name.log)"
}
cap() { if [ $dry = 1 ]; then echo ""; else echo "--compile reduce-overhead"; fi; }  # no capture on the CPU

MLP=benchmarks/bench-mlp.yaml
run mlp-arrival 40 50 $MLP $ARR
run mlp-equilibrium-sync 40 50 $MLP $SYNC
run mlp-equilibrium-default-inference 40 50 benchmarks/bench-mlp-default-inference.yaml
run mlp-cudagraphs-equilibrium-sync 100 50 $MLP $SYNC $(cap)
run mlp-cudagraphs-equilibrium-default-inference 100 50 benchmarks/bench-mlp-default-inference.yaml $(cap)
echo "== inference loop ($(( SECONDS - start )) s so far)"
if [ $dry = 1 ]; then inf_args=(--steps 1 --rounds 1); else inf_args=(--steps 20 --rounds 2); fi
timeout 120 $PY benchmarks/inference.py --device "$device" --threads "$(nproc)" "${inf_args[@]}" \
  > "$out/inference.log" 2>&1 && tail -1 "$out/inference.log" > "$out/inference.result" \
  || echo "inference failed or ran out of time (see $out/inference.log)"
run lm-arrival 60 20 benchmarks/bench-lm.yaml $ARR
run lm-equilibrium 60 20 benchmarks/bench-lm.yaml $EQ
run cnn-arrival 40 20 specs/fashion-cnn.yaml $ARR
run cnn-equilibrium 40 20 specs/fashion-cnn.yaml $EQ

$PY - "$out" <<'PY' | tee "$out/table.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"device: {(out / 'gpu.txt').read_text().splitlines()[0]}\n")
print("| case | device | T | BP ms | PC ms | PC/BP | cold start s |")
print("|---|---|---|---|---|---|---|")
for f in sorted(out.glob("*.json")):
    try:
        r = json.loads(f.read_text())
    except ValueError:
        print(f"| {f.stem} | (no result) | | | | | |")
        continue
    print(f"| {f.stem} | {r['device']} | {r['T']} | {r['bp_step_ms']:.2f} | {r['pc_step_ms']:.2f} | {r['ratio']:.2f} | {r['compile_s']:.1f} |")
inf = out / "inference.result"
if inf.exists():
    r = json.loads(inf.read_text())
    m = r["mlp"]
    print(f"\nbench-mlp, T = 8, one process: BP {m['bp_ms']:.2f} ms, PC sync {m['pc_sync_ms']:.2f} ms, "
          f"PC default inference {m['pc_default_inference_ms']:.2f} ms (default/sync {m['default_over_sync']:.2f})")
    for s in r["small"]:
        print(f"bench-small, batch {s['batch']}, T = {s['T']}: pcgraph {s['pcgraph_steps_per_s']} inference steps/s, "
              f"plain torch loop {s['plain_steps_per_s']} ({s['pcgraph_over_plain']:.2f} x its time)")
PY
echo "results in $out ($(( SECONDS - start )) s)"
