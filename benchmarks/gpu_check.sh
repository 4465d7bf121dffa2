#!/usr/bin/env bash
# The prepared GPU check (issue: large catalogues): CUDA tests, then the timed steps of
# benchmarks/gpu_check.py. Sized to finish in about 8 minutes on one H100/H200. Run it from the
# repository root on the device machine, e.g. through the device tool:
#   bash benchmarks/gpu_check.sh "$OUT"
set -euo pipefail
out="${1:-benchmarks/results}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
export PYTHONUNBUFFERED=1
pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
timeout 150 python -m pytest -q tests/test_cuda.py 2>&1 | tee "$out/cuda_tests.txt"
cd benchmarks && timeout 330 python gpu_check.py --out "$out" 2>&1 | tee "$out/gpu_check.log"
