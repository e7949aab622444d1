#!/usr/bin/env bash
# Data-parallel throughput for docs/scaling.md: bench-mlp and bench-lm trained for one
# epoch of synthetic data by 1 and by 2 processes, one thread each; prints the training
# examples per second of each run (from summary.json: the epoch's training time, the
# first step included, evaluation excluded).
#   benchmarks/scaling.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/scaling}
rm -rf "$out"; mkdir -p "$out"
export OMP_NUM_THREADS=1
grep -m1 "model name" /proc/cpuinfo | tee "$out/cpu.txt"
uptime | tee -a "$out/cpu.txt"

run() {  # name, nproc, spec, overrides...
  local name=$1 n=$2 spec=$3; shift 3
  local sets=()
  for o in "$@"; do sets+=(--set "$o"); done
  python -m pcgraph train "$spec" "${sets[@]}" --set train.epochs=1 --out "$out/$name-$n" --quiet --nproc "$n" > /dev/null
  python - "$out/$name-$n" "$n" "$name" <<'PY'
import json, sys, pathlib
run, n, name = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = json.loads((run / "summary.json").read_text())
spec = (run / "spec.resolved.yaml").read_text()
import yaml
d = yaml.safe_load(spec)
examples = s["steps"] * d["data"]["batch_size"]
print(f"{name:10s} processes {n}: {s['steps']} steps of {d['data']['batch_size']}, {s['train_seconds']:.2f} s, {examples / s['train_seconds']:.0f} examples/s")
PY
}

for n in 1 2; do
  run bench-mlp "$n" benchmarks/bench-mlp.yaml data.options.n_train=5120 data.options.n_test=256
  run bench-lm "$n" benchmarks/bench-lm.yaml data.options.n_train=640 data.options.n_test=64 data.eval_batch_size=64
done | tee "$out/throughput.txt"
uptime | tee -a "$out/cpu.txt"
