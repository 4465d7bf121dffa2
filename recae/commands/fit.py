"""``recae fit``: fit a model on a log and save it."""

from __future__ import annotations

import argparse

from .common import add_data_args, implicit_positives, load_data, model_class, model_names, new_model, parse_params

FIT_EPILOG = """examples:
  recae fit --data ml-1m --model ease --out ease.recae
  recae fit --data ml-100k --model ease --param l2=200 --param dtype=float64 --out ease.recae
  recae fit --data ratings.csv --user-col userId --item-col movieId --rating-col rating --out m.recae
  recae fit --data clicks.tsv --min-user 1 --model popularity --out pop.recae

Ratings above --binarize become positives and users with fewer than --min-user positives are
dropped, unless --explicit keeps the log as it is.
"""


def add_parser(sub) -> None:
    f = sub.add_parser("fit", help="fit a model on a log and save it", epilog=FIT_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_args(f)
    f.add_argument("--model", default="ease", help=f"model class (default ease); one of {model_names()}")
    f.add_argument("--param", action="append", metavar="NAME=VALUE", help="hyper-parameter, repeatable (e.g. --param l2=200)")
    f.add_argument("--explicit", action="store_true", help="keep ratings as they are (no binarize/filter)")
    f.add_argument("--out", required=True, help="model file to write (safetensors + JSON metadata)")
    f.set_defaults(func=cmd_fit)


def cmd_fit(args) -> int:
    data, what = load_data(args)
    if not args.explicit:
        data = implicit_positives(data, args)
    model = new_model(model_class(args.model), parse_params(args.param))
    if "show_progress" in model.get_params() and "show_progress" not in parse_params(args.param):
        model.set_params(show_progress=not args.quiet)  # the CLI shows the training bar by default
    model.fit(data)
    model.save(args.out)
    print(f"fitted {model!r} on {what}: {data.n_users} users × {data.n_items} items; saved to {args.out}")
    return 0
