#!/usr/bin/env bash
# GPU measurements for docs/performance.md, in well under 10 minutes on one card:
# bench-mlp and bench-lm on CUDA, eager and with the whole step (T loop included)
# captured by torch.compile mode "reduce-overhead" (CUDA graphs), and the T sweep.
#   benchmarks/gpu.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"

run() {  # name, then pcgraph bench arguments
  local name=$1; shift
  echo "== $name"
  timeout 240 pcgraph bench "$@" --device cuda --json | tee "$out/$name.log" | tail -1 > "$out/$name.json" || echo "$name failed (see $out/$name.log)"
}

run bench-mlp-eager benchmarks/bench-mlp.yaml --steps 50
run bench-mlp-cudagraphs benchmarks/bench-mlp.yaml --steps 50 --compile reduce-overhead
run bench-lm-eager benchmarks/bench-lm.yaml --steps 20
for T in 1 2 4 8 16 32; do
  run "bench-mlp-T$T" benchmarks/bench-mlp.yaml --steps 30 --no-memory --set "train.inference.steps=$T"
done
echo "results in $out"
