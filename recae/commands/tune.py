"""``recae tune``: search models and settings on one's own data within a budget; save the best."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from ..bench.protocols import PROTOCOLS
from ..bench.spaces import DEFAULT_MODELS, MODELS
from ..exceptions import RecaeError
from ..tuning import tune, write
from ..tuning.api import check_arguments, parse_budget
from ..tuning.report import label
from .common import add_data_args, add_threads_arg, implicit_positives, load_data, writable_paths

TUNE_EPILOG = """examples:
  recae tune --data clicks.csv --budget 20m --out best.recae
  recae tune --data ml-100k --budget 5m --models ease als multdae --out best.recae
  recae tune --data ml-1m --budget 1h --storage tune.db --out best.recae     resumable: run it again after a kill
  recae tune --data ml-100k --budget 30 --out best.recae                      30 trials instead of a time

The log is split (strong generalization by default: validation and test users held out); every
model runs its default setting first, then the time goes mostly to the leaders on validation
(a model's share halves with each model ahead of it; a trial budget gives equal turns), drawn
by Optuna's TPE sampler over its search space; neural trials are pruned per epoch on validation
NDCG@100, and a model far behind the leader leaves early (the report says which and why). The
best on validation is refitted on all users and saved; the report (Markdown, JSON, PNG of
validation score against time) goes to --report-dir (docs/tuning.md).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("tune", help="find the best model and setting for your data within a time budget",
                       epilog=TUNE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(p)
    p.add_argument("--budget", default="20m",
                   help="search time (20m, 90s, 1h30m) or a number of trials (default 20m)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                   help=f"models to search (default: {' '.join(DEFAULT_MODELS)}); from {', '.join(MODELS)}")
    p.add_argument("--protocol", choices=PROTOCOLS, default="strong", help="how the log is split (default strong)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the sampler and the split (a temporal split has none; default 0)")
    p.add_argument("--space", help="JSON {model: {parameter: [values]}} replacing those models' search spaces "
                                   "(the first trial is the default, moved inside the given values)")
    p.add_argument("--storage", help="SQLite file for the search: the same command resumes it after a kill")
    p.add_argument("--study-name", default="recae-tune", help="study name inside --storage (default recae-tune)")
    p.add_argument("--max-epochs", type=int, help="cap the neural models' epochs")
    p.add_argument("--blend-trials", type=int, default=1,
                   help="a Blend candidate averages up to this many settings of each neural member "
                        "(default 1: each member's best trial only)")
    p.add_argument("--no-refit", action="store_true",
                   help="save the chosen trial's model (fitted on the training users) instead of refitting on all")
    p.add_argument("--out", default="best.recae", help="model file to write (default best.recae)")
    p.add_argument("--report-dir", help="folder of the report (default: next to --out)")
    add_threads_arg(p)
    p.set_defaults(func=cmd_tune)


def _clock(seconds) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(record: dict, progress: dict) -> str:
    """One line per finished trial: trials done, elapsed, time (or trials) left, the best so far, this trial."""
    left = (f"{_clock(progress['left'])} left" if progress["left"] is not None
            else f"{progress['trials_left']} trials left")
    state = "" if record["state"] == "complete" else f" {record['state']}"
    return (f"[{progress['trials']:3d}] {_clock(progress['elapsed'])} elapsed, {left} | best {progress['best']:.4f} "
            f"({progress['best_model']}) | {record['model']}{state} {record['valid_ndcg@100']:.4f} "
            f"in {record['seconds']:.1f} s {json.dumps(record['params'])}")


def quiet_optuna() -> None:
    """Optuna's own line per trial would repeat the progress display (the command owns its process's logging)."""
    try:
        import optuna  # lazy: the `tune` extra
    except ImportError:
        raise RecaeError("the search needs Optuna: pip install 'recae[tune]' (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def cmd_tune(args) -> int:
    text = str(args.budget).strip()
    budget = int(text) if re.fullmatch(r"[+-]?\d+", text) else args.budget
    parse_budget(budget)  # before the data loads: a bad budget is refused at once
    if args.seed < 0:
        raise RecaeError(f"--seed must be a non-negative integer; got {args.seed}")
    if args.max_epochs is not None and args.max_epochs < 1:
        raise RecaeError(f"--max-epochs must be a positive integer; got {args.max_epochs}")
    out = Path(args.out)
    report_dir = Path(args.report_dir) if args.report_dir else out.parent
    writable_paths(out, report_dir)
    spaces = None
    if args.space:
        try:
            spaces = json.loads(args.space)
        except json.JSONDecodeError as exc:
            raise RecaeError(f"--space must be JSON such as '{{\"ease\": {{\"l2\": [100, 500]}}}}'; {exc}") from None
        if not isinstance(spaces, dict):
            raise RecaeError(f"--space must be a JSON object {{model: {{parameter: [values]}}}}, such as "
                             f"'{{\"ease\": {{\"l2\": [100, 500]}}}}'; got {args.space}")
    quiet_optuna()
    # models, spaces, --blend-trials and --storage are named before the data loads, like the budget
    check_arguments(args.models, budget, spaces=spaces, random_state=args.seed, max_epochs=args.max_epochs,
                    blend_trials=args.blend_trials, storage=args.storage, study_name=args.study_name)
    data, what = load_data(args)
    data = implicit_positives(data, args)
    print(f"Tuning on {what}: {data.n_users} users × {data.n_items} items, {data.nnz} positives; "
          f"budget {budget}{' trials' if isinstance(budget, int) else ''}, protocol {args.protocol}", flush=True)

    def show(record, progress):
        print(progress_line(record, progress), flush=True)

    result = tune(data, models=args.models, budget=budget, protocol=args.protocol, random_state=args.seed,
                  spaces=spaces, storage=args.storage, study_name=args.study_name, refit=not args.no_refit,
                  max_epochs=args.max_epochs, blend_trials=args.blend_trials, on_trial=None if args.quiet else show)
    result.info["dataset"] = what
    if hasattr(os, "getloadavg"):
        result.info["load"] = "load average after the search: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    command = "recae tune " + " ".join(args.raw_argv) if hasattr(args, "raw_argv") else "recae " + " ".join(sys.argv[1:])
    paths = write(result, report_dir, f"{out.stem}_tune", command)
    print()
    for r in result.leaderboard:
        print(f"  {label(r):<11} valid {r['valid_ndcg@100']:.4f}  test {r['test']['ndcg@100']:.4f}  "
              f"{r['trials']:3d} trials ({r['pruned']} pruned)  {r['seconds']:6.0f} s")
    for name, why in result.info.get("left", {}).items():
        print(f"  {name} left the rotation: {why}")
    print(f"\nchosen: {result.name} {json.dumps(result.params)} (valid NDCG@100 {result.valid:.4f}, "
          f"test {result.test['ndcg@100']:.4f}); the saved model is fitted on {result.info['refit_on']}")
    print(f"written: {out}, {', '.join(str(p) for p in paths.values())}")
    return 0
