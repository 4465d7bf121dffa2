"""``recae bench``: recae's models against implicit ALS/BPR and EASE on the same splits, tuned alike."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from ..bench import console_table, run_bench, write
from ..bench.protocols import PROTOCOLS
from ..bench.spaces import DEFAULT_MODELS, MODELS, check_models
from ..exceptions import RecaeError
from .common import add_data_args, implicit_positives, load_data, warn, writable_paths
from .tune import quiet_optuna

BENCH_EPILOG = """examples:
  recae bench --dataset ml-100k                       all models, strong generalization, 3 splits
  recae bench --dataset ml-1m --protocol temporal --models als ease multdae
  recae bench --dataset synthetic-ml20m --models popularity ease als multdae --seeds 1 --budget 1 --max-epochs 3
  recae bench --dataset ml-1m --budget-seconds 120    an equal wall-clock budget per model, one thread each

Every model gets the same number of tuning trials (--budget: its default setting, then random
points of its grid), or with --budget-seconds the same wall-clock time on one thread (its
default setting, then Optuna's TPE sampler over the same grids, neural trials pruned per
epoch); chosen on validation NDCG@100; test metrics are computed once with the chosen setting.
Results go to --out as Markdown, JSON and a PNG plot (with matplotlib); they say which budget ran.
"""


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="recae's models against implicit ALS/BPR and EASE on the same splits",
                       epilog=BENCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(b)
    b.add_argument("--protocol", choices=PROTOCOLS, default="strong")
    b.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                   help=f"models to run (default: {' '.join(DEFAULT_MODELS)}); any of: {', '.join(MODELS)}")
    b.add_argument("--seeds", type=int, help="number of user splits (seeds 98765, 1, 2, ...; default 3)")
    b.add_argument("--budget", type=int, help="tuning trials per model (default 4)")
    b.add_argument("--budget-seconds", type=float, metavar="S",
                   help="instead of --budget: S seconds of search per model, baselines included, on one thread each")
    b.add_argument("--tune", choices=("first", "every"), default="first",
                   help="tune on the first split only (default) or on every split")
    b.add_argument("--max-epochs", type=int, help="cap the neural models' epochs (large logs)")
    b.add_argument("--threads", type=int, help="torch threads for the run (default: torch's)")
    b.add_argument("--out", default="bench-results", help="folder for the .md/.json/.png results (default bench-results)")
    b.add_argument("--name", help="file stem of the results (default bench_<dataset>_<protocol>)")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    if args.budget is not None and args.budget_seconds is not None:
        raise RecaeError("give --budget (trials per model) or --budget-seconds (seconds per model), not both")
    if args.budget_seconds is not None and not 0 < args.budget_seconds < math.inf:  # before the data loads
        raise RecaeError(f"--budget-seconds must be a positive, finite number of seconds; got {args.budget_seconds}")
    budget = 4 if args.budget is None else args.budget
    # what needs no data is checked before the data loads (and before the first model runs)
    for flag, value, low in (("--budget", budget, 1), ("--seeds", args.seeds, 1), ("--max-epochs", args.max_epochs, 1)):
        if value is not None and value < low:
            raise RecaeError(f"{flag} must be a positive integer; got {value}")
    check_models(args.models)
    if args.name is not None and (not args.name.strip() or "/" in args.name or os.sep in args.name):
        raise RecaeError(f"--name is the results' file stem, without a folder (--out sets that); got {args.name!r}")
    if args.protocol == "temporal" and args.seeds is not None and args.seeds > 1:  # given, not the default
        warn(f"--seeds {args.seeds}: the temporal split has no randomness, so it runs once")
    seeds = 3 if args.seeds is None else args.seeds
    writable_paths(Path(args.out) / "results.md", None, model_file=False)  # --out is the results' folder
    data, what = load_data(args)
    data = implicit_positives(data, args)
    print(f"Benchmarking on {what}: {data.n_users} users × {data.n_items} items, {data.nnz} positives; "
          f"protocol {args.protocol}")
    stem = args.name or f"bench_{Path(args.data).stem if Path(args.data).suffix else args.data}_{args.protocol}" + (
        f"_budget_seconds{args.budget_seconds:g}" if args.budget_seconds else "")
    command = "recae " + " ".join(sys.argv[1:]) if sys.argv and Path(sys.argv[0]).name == "recae" else \
        "recae bench " + " ".join(args.raw_argv)

    def save(row, result):
        # partial results survive an interrupted run
        print(f"  seed {row['seed']} {row['label']}: valid {row['valid_ndcg@100']:.4f} test NDCG@100 "
              f"{row['ndcg@100']:.4f} ({row['fit_seconds']:.1f} s) {json.dumps(row['params'])}", flush=True)
        result.info.update(dataset=what, seconds=time.perf_counter() - t0)
        write(result, args.out, stem, command)

    if args.budget_seconds:
        quiet_optuna()
    t0 = time.perf_counter()
    result = run_bench(data, protocol=args.protocol, models=args.models, seeds=seeds, budget=budget,
                       tune=args.tune, max_epochs=args.max_epochs, threads=args.threads,
                       show_progress=not args.quiet, on_row=save, budget_seconds=args.budget_seconds)
    result.info.update(dataset=what, seconds=time.perf_counter() - t0)
    paths = write(result, args.out, stem, command)
    print()
    print(console_table(result))
    print(f"\nwhole run {result.info['seconds']:.0f} s; written: {', '.join(str(p) for p in paths.values())}")
    return 0
