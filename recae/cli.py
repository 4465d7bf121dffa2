"""The ``recae`` command line: demo, fit, recommend, evaluate.

Talks only to the public API. This module is the one place in recae that prints.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .data.ids import plain
from .data import Interactions, holdout_split, strong_generalization_split, temporal_split
from .evaluate import evaluate
from .exceptions import RecaeError, UnknownIdError
from .image.cli import add_image_parser
from .models import MODEL_REGISTRY

DATASETS = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "synthetic", "synthetic-ml20m")

EPILOG = """examples:
  recae demo                                   fit EASE on ML-100K (or a synthetic log) and compare with popularity
  recae fit --data ml-1m --model ease --out ease.recae
  recae fit --data ratings.csv --user-col userId --item-col movieId --rating-col rating --out m.recae
  recae recommend --model-file ease.recae --user 42 -n 10
  recae recommend --model-file ease.recae --history 1,50,181 -n 5
  recae evaluate --data ml-1m --model ease --protocol strong --seeds 98765 1 2
  recae bench --dataset ml-100k                 every model vs implicit ALS/BPR, tuned alike, tables + plot
  recae image fit --data mnist --arch conv --latent-dim 32 --out conv.recae

Data: --data takes a dataset name (ml-100k, ml-1m, ..., synthetic) looked up in --data-dir,
then $RECAE_DATA_DIR, then ./datasets; or a path to a .csv/.tsv/.parquet log.
"""


DEMO_EPILOG = """examples:
  recae demo                                   MovieLens 100K if found, else a seeded synthetic log
  recae demo --data-dir ../shared/data         look for ml-100k/u.data there
"""

FIT_EPILOG = """examples:
  recae fit --data ml-1m --model ease --out ease.recae
  recae fit --data ml-100k --model ease --param l2=200 --param dtype=float64 --out ease.recae
  recae fit --data ratings.csv --user-col userId --item-col movieId --rating-col rating --out m.recae
  recae fit --data clicks.tsv --min-user 1 --model popularity --out pop.recae

Ratings above --binarize become positives and users with fewer than --min-user positives are
dropped, unless --explicit keeps the log as it is.
"""

RECOMMEND_EPILOG = """examples:
  recae recommend --model-file ease.recae --user 42 -n 10
  recae recommend --model-file ease.recae --user 1 2 3 --format csv
  recae recommend --model-file ease.recae --history 1,50,181 -n 5 --format json

Items the user already has are never recommended; unknown --history items are ignored.
"""

EVALUATE_EPILOG = """examples:
  recae evaluate --data ml-1m --model ease --protocol strong --seeds 98765 1 2
  recae evaluate --data synthetic --model popularity --k 20 100
  recae evaluate --data ml-100k --model ease --param l2=200 --protocol holdout --output results.csv

Protocols: strong (held-out users, 80/20 fold-in/target, Liang et al. 2018), holdout (20% of
each user's items), temporal (each user's last item). Recall@k is hits / |target|;
truncated_recall@k is hits / min(k, |target|), the "Recall@k" of the autoencoder papers.
"""


def _model_class(name: str):
    by_lower = {k.lower(): v for k, v in MODEL_REGISTRY.items() if k != "Recommender"}
    if name.lower() not in by_lower:
        raise RecaeError(f"unknown model {name!r}; choose from {sorted(by_lower)}")
    return by_lower[name.lower()]


def _new_model(cls, params: dict):
    """An instance with ``params``; unknown names are refused with the valid ones listed."""
    return cls().set_params(**params)


def _parse_params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise RecaeError(f"--param takes NAME=VALUE; got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key.isidentifier():
            raise RecaeError(f"--param takes NAME=VALUE with a parameter name; got {pair!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


BENCH_EPILOG = """examples:
  recae bench --dataset ml-100k                       all models, strong generalization, 3 splits
  recae bench --dataset ml-1m --protocol temporal --models als ease multdae
  recae bench --dataset synthetic-ml20m --models popularity ease als multdae --seeds 1 --budget 1 --max-epochs 3

Every model gets the same number of tuning trials (--budget: its default setting, then random
points of its grid), chosen on validation NDCG@100; test metrics are computed once with the
chosen setting. Results go to --out as Markdown, JSON and a PNG plot (with matplotlib).
"""


def load_data(args) -> tuple[Interactions, str]:
    """Interactions for ``--data`` and a description of what was loaded."""
    from .datasets import load_movielens, synthetic

    name = args.data
    if name == "synthetic":
        return synthetic(n_users=2000, n_items=1000, random_state=args.seed_data), "synthetic log (seeded)"
    if name == "synthetic-ml20m":
        from .bench.protocols import SYNTHETIC_ML20M

        return (synthetic(**SYNTHETIC_ML20M, random_state=args.seed_data),
                "synthetic ML-20M-shaped log (136,677 × 20,108, 10M positives)")
    if name in DATASETS:
        variant = name.split("-", 1)[1]
        return load_movielens(variant, data_dir=args.data_dir, download=args.download,
                              show_progress=not args.quiet), f"MovieLens {variant.upper()}"
    path = Path(name)
    cols = dict(user=args.user_col, item=args.item_col, rating=args.rating_col, timestamp=args.timestamp_col)
    if path.suffix == ".parquet":
        return Interactions.from_parquet(path, **cols), str(path)
    sep = args.sep or ("\t" if path.suffix in (".tsv", ".tab") else ",")
    return Interactions.from_csv(path, sep=sep, **cols), str(path)


def _implicit(data: Interactions, args) -> Interactions:
    if data.has_ratings and args.binarize is not None:
        data = data.binarize(args.binarize)
    return data.filter(min_user=args.min_user, min_item=args.min_item)


def _print_table(table: pd.DataFrame) -> None:
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def cmd_demo(args) -> int:
    from .datasets import find_dataset_dir, load_movielens, load_movielens_items, synthetic

    titles = None
    if find_dataset_dir("ml-100k", ["u.data"], args.data_dir) is not None:
        data = load_movielens("100k", data_dir=args.data_dir, download=False)
        titles = load_movielens_items("100k", data_dir=args.data_dir, download=False).set_index("item")["title"]
        print(f"Dataset: MovieLens 100K ({data.n_users} users, {data.n_items} items, {data.nnz} ratings)")
    else:
        data = synthetic(n_users=1500, n_items=800, random_state=0)
        print("Dataset: synthetic log (MovieLens 100K not found in --data-dir, $RECAE_DATA_DIR or ./datasets; "
              f"{data.n_users} users, {data.n_items} items, {data.nnz} interactions)")
    positives = data.binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(positives, 0.1, random_state=args.seed)
    print(f"Protocol: strong generalization, {split.test_fold_in.n_users} test users held out, ratings >= 4 as positives")
    from .models import EASE, Popularity

    ease = EASE().fit(split.train)
    user = split.train.user_ids[0]
    ids, scores = ease.recommend(user, n=10)
    print(f"\nTop 10 for training user {user} (EASE, l2={ease.l2}):")
    for rank, (item, score) in enumerate(zip(ids, scores), 1):
        label = titles.get(item, "") if titles is not None else ""
        print(f"  {rank:2d}. item {item!s:>6}  score {score:7.4f}  {label}")
    rows = []
    for name, model in (("Popularity", Popularity().fit(split.train)), ("EASE", ease)):
        t = evaluate(model, split, k=(20, 50, 100), metrics=("ndcg", "truncated_recall"))
        rows.append({"model": name, "NDCG@100": t.loc["ndcg@100", "mean"], "± se": t.loc["ndcg@100", "se"],
                     "Recall@20": t.loc["truncated_recall@20", "mean"],
                     "Recall@50": t.loc["truncated_recall@50", "mean"]})
    print("\nTest quality (Recall@k = hits / min(k, |target|)):")
    _print_table(pd.DataFrame(rows).set_index("model"))
    return 0


def cmd_fit(args) -> int:
    data, what = load_data(args)
    if not args.explicit:
        data = _implicit(data, args)
    model = _new_model(_model_class(args.model), _parse_params(args.param))
    if "show_progress" in model.get_params() and "show_progress" not in _parse_params(args.param):
        model.set_params(show_progress=not args.quiet)  # the CLI shows the training bar by default
    model.fit(data)
    model.save(args.out)
    print(f"fitted {model!r} on {what}: {data.n_users} users × {data.n_items} items; saved to {args.out}")
    return 0


def _typed_ids(raw: list[str], known: np.ndarray, kind: str) -> list:
    """Command-line ids typed like the model's ids (integers or strings)."""
    raw = [x.strip() for x in raw if x.strip()]
    if known.dtype.kind not in "iu":
        return raw
    out = []
    for x in raw:
        try:
            out.append(int(x))
        except ValueError:
            raise UnknownIdError(f"unknown {kind} id {x!r}: this model's {kind} ids are integers "
                                 f"like {known[:3].tolist()}") from None
    return out


def cmd_recommend(args) -> int:
    from .io import load_model

    model = load_model(args.model_file)
    rows = []
    if args.history:
        items = _typed_ids(args.history.split(","), model.item_ids_, "item")
        if not items:
            raise RecaeError(f"--history holds no item ids; got {args.history!r}")
        ids, scores = model.recommend_new(items, n=args.n, unknown="ignore")
        rows += [{"user": "(new)", "rank": r + 1, "item": plain(i), "score": float(s)} for r, (i, s) in enumerate(zip(ids, scores))]
    for user in _typed_ids(args.user or [], model.user_ids_, "user"):
        ids, scores = model.recommend(user, n=args.n)
        rows += [{"user": user, "rank": r + 1, "item": plain(i), "score": float(s)} for r, (i, s) in enumerate(zip(ids, scores))]
    if not rows:
        raise RecaeError("give --user ID [ID ...] and/or --history ITEM,ITEM,...")
    table = pd.DataFrame(rows)
    if args.format == "json":
        print(json.dumps(rows, default=str, indent=1))
    elif args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_string(index=False))
    return 0


def cmd_evaluate(args) -> int:
    data, what = load_data(args)
    data = _implicit(data, args)
    cls = _model_class(args.model)
    params = _parse_params(args.param)
    results = []
    for seed in args.seeds:
        if args.protocol == "strong":
            split = strong_generalization_split(data, args.heldout, random_state=seed)
        elif args.protocol == "holdout":
            split = holdout_split(data, 0.2, random_state=seed)
        else:
            if seed != args.seeds[0]:
                break  # the temporal split has no randomness: one run is all there is
            split = temporal_split(data, k=1)
        model = _new_model(cls, params).fit(split.train)
        table = evaluate(model, split, k=args.k)
        table.insert(0, "seed", seed)
        results.append(table)
    out = pd.concat(results)
    print(f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())}) on {what}, protocol {args.protocol}")
    summary = out.groupby(level=0, sort=False)["mean"].agg(["mean", "std", "count"]).rename(columns={"count": "seeds"})
    _print_table(summary)
    if args.output:
        out.to_csv(args.output)
        print(f"per-seed results written to {args.output}")
    return 0


def cmd_bench(args) -> int:
    from . import bench

    data, what = load_data(args)
    data = _implicit(data, args)
    print(f"Benchmarking on {what}: {data.n_users} users × {data.n_items} items, {data.nnz} positives; "
          f"protocol {args.protocol}")
    stem = args.name or f"bench_{Path(args.data).stem if Path(args.data).suffix else args.data}_{args.protocol}"
    command = "recae " + " ".join(sys.argv[1:]) if sys.argv and Path(sys.argv[0]).name == "recae" else \
        "recae bench " + " ".join(args.raw_argv)

    def save(row, result):
        # partial results survive an interrupted run
        print(f"  seed {row['seed']} {row['label']}: valid {row['valid_ndcg@100']:.4f} test NDCG@100 "
              f"{row['ndcg@100']:.4f} ({row['fit_seconds']:.1f} s) {json.dumps(row['params'])}", flush=True)
        result.info.update(dataset=what, seconds=time.perf_counter() - t0)
        bench.write(result, args.out, stem, command)

    t0 = time.perf_counter()
    result = bench.run_bench(data, protocol=args.protocol, models=args.models, seeds=args.seeds, budget=args.budget,
                             tune=args.tune, max_epochs=args.max_epochs, threads=args.threads,
                             show_progress=not args.quiet, on_row=save)
    result.info.update(dataset=what, seconds=time.perf_counter() - t0)
    paths = bench.write(result, args.out, stem, command)
    print()
    print(bench.console_table(result))
    print(f"\nwhole run {result.info['seconds']:.0f} s; written: {', '.join(str(p) for p in paths.values())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recae", description="Collaborative-filtering autoencoders: fit, recommend, evaluate.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"recae {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_args(sp_, required=True):
        g = sp_.add_argument_group("data")
        g.add_argument("--data", "--dataset", dest="data", required=required,
                       help=f"dataset name ({', '.join(DATASETS)}) or a CSV/TSV/Parquet path")
        g.add_argument("--data-dir", help="folder holding datasets (default: $RECAE_DATA_DIR, then ./datasets)")
        g.add_argument("--download", action="store_true", help="download a missing MovieLens dataset")
        g.add_argument("--user-col", default="user", help="user id column of a CSV/Parquet log (default: user)")
        g.add_argument("--item-col", default="item", help="item id column (default: item)")
        g.add_argument("--rating-col", help="rating column, if any")
        g.add_argument("--timestamp-col", help="timestamp column, if any")
        g.add_argument("--sep", help="field separator of a text log (default: ',' or tab for .tsv)")
        g.add_argument("--binarize", type=float, default=3.5, help="ratings above this are positives (default 3.5)")
        g.add_argument("--min-user", type=int, default=5, help="drop users with fewer positives (default 5)")
        g.add_argument("--min-item", type=int, default=1, help="drop items with fewer positives (default 1)")
        g.add_argument("--seed-data", type=int, default=0, help=argparse.SUPPRESS)
        g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    d = sub.add_parser("demo", help="fit EASE on MovieLens 100K (or a synthetic log), recommend, compare with popularity",
                       epilog=DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--data-dir", help="folder holding ml-100k/ (default: $RECAE_DATA_DIR, then ./datasets)")
    d.add_argument("--seed", type=int, default=98765, help="user split seed")
    d.set_defaults(func=cmd_demo)

    f = sub.add_parser("fit", help="fit a model on a log and save it", epilog=FIT_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    data_args(f)
    f.add_argument("--model", default="ease", help=f"model class (default ease); one of {sorted(k.lower() for k in MODEL_REGISTRY if k != 'Recommender')}")
    f.add_argument("--param", action="append", metavar="NAME=VALUE", help="hyper-parameter, repeatable (e.g. --param l2=200)")
    f.add_argument("--explicit", action="store_true", help="keep ratings as they are (no binarize/filter)")
    f.add_argument("--out", required=True, help="model file to write (safetensors + JSON metadata)")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("recommend", help="top-n items for known users or a new user's history", epilog=RECOMMEND_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--model-file", required=True, help="a file written by `recae fit`")
    r.add_argument("--user", nargs="+", help="raw user id(s) seen in training")
    r.add_argument("--history", help="comma-separated raw item ids of a new user")
    r.add_argument("-n", type=int, default=10, help="items per user (default 10)")
    r.add_argument("--format", choices=("table", "csv", "json"), default="table")
    r.set_defaults(func=cmd_recommend)

    e = sub.add_parser("evaluate", help="fit on a split and report ranking metrics", epilog=EVALUATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    data_args(e)
    e.add_argument("--model", default="ease")
    e.add_argument("--param", action="append", metavar="NAME=VALUE")
    e.add_argument("--protocol", choices=("strong", "holdout", "temporal"), default="strong")
    e.add_argument("--heldout", type=float, default=0.1, help="fraction of users per held-out part (strong)")
    e.add_argument("--seeds", type=int, nargs="+", default=[98765], help="split seeds (one fit per seed)")
    e.add_argument("--k", type=int, nargs="+", default=[20, 50, 100])
    e.add_argument("--output", help="CSV file for the per-seed table")
    e.set_defaults(func=cmd_evaluate)
    from .bench.spaces import DEFAULT_MODELS, MODELS

    b = sub.add_parser("bench", help="recae's models against implicit ALS/BPR and EASE on the same splits",
                       epilog=BENCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_args(b)
    b.add_argument("--protocol", choices=("strong", "holdout", "temporal"), default="strong")
    b.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="MODEL",
                   help=f"models to run (default all): {', '.join(MODELS)}")
    b.add_argument("--seeds", type=int, default=3, help="number of user splits (seeds 98765, 1, 2, ...; default 3)")
    b.add_argument("--budget", type=int, default=4, help="tuning trials per model (default 4)")
    b.add_argument("--tune", choices=("first", "every"), default="first",
                   help="tune on the first split only (default) or on every split")
    b.add_argument("--max-epochs", type=int, help="cap the neural models' epochs (large logs)")
    b.add_argument("--threads", type=int, help="torch threads for the run (default: torch's)")
    b.add_argument("--out", default="bench-results", help="folder for the .md/.json/.png results (default bench-results)")
    b.add_argument("--name", help="file stem of the results (default bench_<dataset>_<protocol>)")
    b.set_defaults(func=cmd_bench)
    add_image_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.raw_argv = list(sys.argv[2:] if argv is None else argv[1:])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader went away (e.g. `recae demo | head`): stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RecaeError, OSError) as exc:
        # OSError: unreadable or unwritable files and folders (permissions, a full disk, ...)
        print(f"recae: error: {_message(exc)}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"recae: error: an optional dependency is missing: {_message(exc)} "
              "(e.g. pip install 'recae[parquet]' for Parquet files)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recae: interrupted", file=sys.stderr)
        return 130


def _message(exc: BaseException) -> str:
    """The message (multi-line ones, like the dataset-not-found help, keep their layout)."""
    return str(exc).strip() or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
