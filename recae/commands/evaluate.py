"""``recae evaluate``: fit on the splits of a protocol and report ranking metrics."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from ..atomic import atomic_write_text
from ..bench.protocols import PROTOCOLS, make_split, split_seeds
from ..evaluate import evaluate
from ..exceptions import ModelFileError, RecaeError
from ..models import Recommender
from ..models.explicit import ExplicitRecommender
from .common import (add_data_args, add_threads_arg, data_description, implicit_positives, load_data, model_class,
                     model_names, new_model, parse_params, print_table, warn, writable_paths)

EVALUATE_EPILOG = """examples:
  recae evaluate --data ml-1m --model ease --protocol strong --seeds 98765 1 2
  recae evaluate --data synthetic --model popularity --k 20 100
  recae evaluate --data ml-100k --model ease --param l2=200 --protocol holdout --output results.csv
  recae evaluate --data ratings.csv --model best.recae --seeds 1 2 3

--model takes a model name or a saved model file (recae fit / recae tune --out): a file's model
class and settings are fitted again on each split's training users, --param overriding them.
What the saved fit learned on validation stays: a Blend's weights, a neural model's epochs (a
recae tune file holds them for its Blend's members too; a Blend fitted elsewhere with validation
does not keep its members' epochs).

Protocols: strong (held-out users, 80/20 fold-in/target, Liang et al. 2018), holdout (20% of
each user's items), temporal (each user's last item). recall@k is hits / |target|;
truncated_recall@k is hits / min(k, |target|), the "Recall@k" of the autoencoder papers.

Columns: mean (over seeds of the per-seed means over test users), std_over_seeds (spread of
the per-seed means; NaN with one seed), se_over_users (standard error of a per-seed mean over
its test users, averaged over seeds), seeds. The --output CSV has one row per seed and metric
(mean, se_over_users, n_users).
"""


def add_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="fit on a split and report ranking metrics", epilog=EVALUATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(e)
    e.add_argument("--model", default="ease", help="model name, or a saved model file whose settings to fit (default: ease)")
    e.add_argument("--param", action="append", metavar="NAME=VALUE")
    e.add_argument("--protocol", choices=PROTOCOLS, default="strong")
    e.add_argument("--heldout", type=float, default=0.1, help="fraction of users per held-out part (strong)")
    e.add_argument("--seeds", type=int, nargs="+", default=[98765], help="split seeds (one fit per seed)")
    e.add_argument("--k", type=int, nargs="+", default=[20, 50, 100])
    e.add_argument("--output", help="CSV file for the per-seed table")
    add_threads_arg(e)
    e.set_defaults(func=cmd_evaluate)


def unfitted_model(name: str, params: dict) -> tuple[Recommender, str]:
    """The model to fit on each split: a named one, or a saved file's class and settings; and how to name it."""
    if name.lower() in model_names() or not (name.endswith(".recae") or os.path.exists(name)):
        cls = model_class(name)
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return new_model(cls, params), f"{cls.__name__}({shown})"
    if not os.path.isfile(name):
        raise RecaeError(f"no model file {name!r}; --model takes a model name ({', '.join(model_names())}) "
                         "or a saved model file")
    try:
        saved, note = Recommender.load(name), ""
    except ModelFileError as exc:
        if "saved for device" not in str(exc):
            raise
        # the settings are what is evaluated; the device they were saved for is not here
        saved = Recommender.load(name, device="auto")
        note = "; the device it was saved for is not usable here, so device='auto'"
    learned, why = learned_settings(saved)
    model = saved.clone().set_params(**learned).set_params(**params)
    note += why
    return model, f"{model!r} (the settings of {name}, fitted again on each split{note})"


def learned_settings(saved) -> tuple[dict, str]:
    """What a saved model learned on validation, as settings (the splits here have no validation part)."""
    learned, notes = {}, []
    if getattr(saved, "weights", False) is None and getattr(saved, "weights_", None) is not None:
        learned["weights"] = [float(w) for w in saved.weights_]
        notes.append("the Blend's weights learned on validation")
    epoch = (getattr(saved, "quality_", None) or {}).get("epoch")
    if "epochs" in saved.get_params() and isinstance(epoch, int) and epoch > 0:
        learned["epochs"] = epoch
        notes.append(f"the {epoch} epochs its validation stopped at")
    return learned, "".join(f"; {n}" for n in notes)


def cmd_evaluate(args) -> int:
    if args.protocol == "temporal" and len(args.seeds) > 1:
        warn(f"--seeds {' '.join(map(str, args.seeds))}: the temporal split has no randomness, so it runs once")
    if args.protocol != "strong" and args.heldout != 0.1:
        warn(f"--heldout {args.heldout:g} ignored: it sets the held-out users of --protocol strong")
    if min(args.seeds) < 0:  # before the data is read and split
        raise RecaeError(f"--seeds must be non-negative integers; got {' '.join(map(str, args.seeds))}")
    twice = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
    if twice:  # the same split twice would count as two and shrink std_over_seeds
        raise RecaeError(f"--seeds lists {' '.join(map(str, twice))} more than once; give distinct seeds")
    if min(args.k) < 1:
        raise RecaeError(f"--k must be positive integers; got {' '.join(map(str, args.k))}")
    if args.output:  # before the fits, not after them; its folder is made, as fit's --out is
        writable_paths(Path(args.output), data=args.data, model_file=False, flag="--output")
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    params = parse_params(args.param)
    model, shown = unfitted_model(args.model, params)
    if args.quiet and "show_progress" in model.get_params() and "show_progress" not in params:
        model.set_params(show_progress=False)  # -q: no training bars either
    if isinstance(model, ExplicitRecommender):  # before the data is read
        raise RecaeError(f"{type(model).__name__} trains on explicit ratings, and recae evaluate ranks the "
                         "positives of a binarized log: choose a model of positives here (ease, multvae, ...); a "
                         "rating model's RMSE is measured as in benchmarks/autorec_ratings.py")
    print(f"{shown} on {data_description(args)}, protocol {args.protocol}")
    data, _ = load_data(args)
    data = implicit_positives(data, args)
    results = []
    # the temporal split has no randomness: one run is all there is
    for seed in split_seeds(args.protocol, args.seeds):
        # no validation part: this fits once on all of train (the bench defaults hold one out for tuning)
        split = make_split(data, args.protocol, seed, heldout=args.heldout, valid_size=0.0, valid_k=0)
        model = model.clone().fit(split.train)
        table = evaluate(model, split, k=args.k).rename(columns={"se": "se_over_users"})
        table.insert(0, "seed", seed)
        results.append(table)
    out = pd.concat(results)
    groups = out.groupby(level=0, sort=False)
    summary = groups["mean"].agg(["mean", "std", "count"]).rename(columns={"std": "std_over_seeds", "count": "seeds"})
    summary.insert(2, "se_over_users", groups["se_over_users"].mean())
    print_table(summary)
    if args.output:
        atomic_write_text(args.output, out.to_csv())
        print(f"per-seed results written to {args.output}")
    return 0
