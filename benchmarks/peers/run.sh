#!/usr/bin/env bash
# pcgraph side by side with pcx and FabricPC on bench-mlp; see benchmarks/peers/run.py.
# Usage: benchmarks/peers/run.sh [--quick] [--note TEXT] [--rounds N] [--threads N]
# PYTHON names the project's Python (torch + pcgraph's dependencies); default: python.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" benchmarks/peers/run.py "$@"
