#!/usr/bin/env bash
# GPU measurements for docs/performance.md in under 8 minutes on one card: bench-mlp,
# the transformer LM (bench-lm) and the CNN (specs/fashion-cnn.yaml) on CUDA, each
# eager and with the whole training step -- the T inference loop included -- captured
# by torch.compile mode "reduce-overhead" (CUDA graphs). PC runs both with the default
# weight gradient (at the error's first arrival) and with the T-step equilibrium one.
# Ends with one table (also written to OUT_DIR/table.md).
#   benchmarks/gpu.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
EQ="--set train.weights.gradient=equilibrium"

run() {  # name, seconds allowed, then pcgraph bench arguments
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" python -m pcgraph bench "$@" --device cuda --no-memory --json > "$out/$name.log" 2>&1 \
    && tail -1 "$out/$name.log" > "$out/$name.json" || echo "$name failed or ran out of time (see $out/$name.log)"
}

run mlp-eager 40 benchmarks/bench-mlp.yaml --steps 50
run mlp-eager-equilibrium 40 benchmarks/bench-mlp.yaml --steps 50 $EQ
run mlp-cudagraphs-equilibrium 90 benchmarks/bench-mlp.yaml --steps 50 --compile reduce-overhead $EQ
run lm-eager 50 benchmarks/bench-lm.yaml --steps 20
run lm-eager-equilibrium 50 benchmarks/bench-lm.yaml --steps 20 $EQ
run lm-cudagraphs-equilibrium 120 benchmarks/bench-lm.yaml --steps 20 --compile reduce-overhead $EQ
run cnn-eager 40 specs/fashion-cnn.yaml --steps 20
run cnn-eager-equilibrium 40 specs/fashion-cnn.yaml --steps 20 $EQ

python - "$out" <<'PY' | tee "$out/table.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"GPU: {(out / 'gpu.txt').read_text().splitlines()[0]}\n")
print("| case | device | T | BP ms | PC ms | PC/BP | cold start s |")
print("|---|---|---|---|---|---|---|")
for f in sorted(out.glob("*.json")):
    try:
        r = json.loads(f.read_text())
    except ValueError:
        continue
    print(f"| {f.stem} | {r['device']} | {r['T']} | {r['bp_step_ms']:.2f} | {r['pc_step_ms']:.2f} | {r['ratio']:.2f} | {r['compile_s']:.1f} |")
PY
echo "results in $out"
