"""``recae recommend``: top-n items from a saved model for known users or a new user's history."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from ..data.ids import plain
from ..exceptions import RecaeError, UnknownIdError
from ..models.params import load as load_model

RECOMMEND_EPILOG = """examples:
  recae recommend --model-file ease.recae --user 42 -n 10
  recae recommend --model-file ease.recae --user 1 2 3 --format csv
  recae recommend --model-file ease.recae --history 1,50,181 -n 5 --format json

Items the user already has are never recommended; unknown --history items are ignored.
"""


def add_parser(sub) -> None:
    r = sub.add_parser("recommend", help="top-n items for known users or a new user's history", epilog=RECOMMEND_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--model-file", required=True, help="a file written by `recae fit`")
    r.add_argument("--user", nargs="+", help="raw user id(s) seen in training")
    r.add_argument("--history", help="comma-separated raw item ids of a new user")
    r.add_argument("-n", type=int, default=10, help="items per user (default 10)")
    r.add_argument("--format", choices=("table", "csv", "json"), default="table")
    r.set_defaults(func=cmd_recommend)


def typed_ids(raw: list[str], known: np.ndarray, kind: str) -> list:
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
    model = load_model(args.model_file)
    rows = []
    if args.history:
        items = typed_ids(args.history.split(","), model.item_ids_, "item")
        if not items:
            raise RecaeError(f"--history holds no item ids; got {args.history!r}")
        ids, scores = model.recommend_new(items, n=args.n, unknown="ignore")
        rows += [{"user": "(new)", "rank": r + 1, "item": plain(i), "score": float(s)} for r, (i, s) in enumerate(zip(ids, scores))]
    for user in typed_ids(args.user or [], model.user_ids_, "user"):
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
