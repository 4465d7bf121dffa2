#!/usr/bin/env bash
# The `recae bench` runs whose results are committed in benchmarks/results/bench_*.{md,json,png}.
# Run from the repository root with `pip install torch==2.13.0 -e ".[bench]"` and the data in
# $RECAE_DATA_DIR (e.g. ../shared/data). --threads 1 because the 2-core machine was shared;
# on a quiet machine leave it out. Each results file records its own command, machine and date.
set -euo pipefail
out=benchmarks/results
recae bench --dataset ml-100k --threads 1 --out "$out" -q                                   # ~7 min
recae bench --dataset ml-1m --protocol strong --seeds 3 --budget 2 --threads 1 --out "$out" -q  # ~45-90 min
recae bench --dataset ml-1m --protocol temporal --budget 1 --threads 1 --out "$out" -q        # ~26 min
recae bench --dataset synthetic-ml20m --binarize 0 --models popularity ease als multdae \
    --seeds 1 --budget 1 --max-epochs 2 --threads 1 --out "$out" -q                         # bounded memory
