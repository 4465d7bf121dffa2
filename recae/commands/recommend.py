"""``recae recommend``: top-n items from a saved model for known users or a new user's history."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from ..data.ids import plain
from ..exceptions import RecaeError, UnknownIdError
from ..models import Recommender
from ..models.explicit import ExplicitRecommender
from .common import warn

RECOMMEND_EPILOG = """examples:
  recae recommend --model-file ease.recae --user 42 -n 10
  recae recommend --model-file ease.recae --user 1,2,3 --format csv
  recae recommend --model-file ease.recae --user 1,2,999 --skip-unknown          results for 1 and 2; 999 listed
  recae recommend --model-file ease.recae --history 1,50,181 -n 5 --format json
  recae recommend --model-file autorec.recae --history 50:5,181:3 -n 5            a new user's ratings

Items the user already has are never recommended; unknown --history items are left out (with a
warning naming them).
"""


def add_parser(sub) -> None:
    r = sub.add_parser("recommend", help="top-n items for known users or a new user's history", epilog=RECOMMEND_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--model-file", required=True, help="a file written by `recae fit`")
    r.add_argument("--user", nargs="+", action="extend",
                   help="raw user id(s) seen in training, as separate arguments or comma-separated (repeatable)")
    r.add_argument("--skip-unknown", action="store_true",
                   help="recommend for the known --user ids and list the unknown ones (default: an unknown id fails)")
    r.add_argument("--history", help="a new user's raw item ids (1,50,181) or item:rating pairs (50:5,181:3)")
    r.add_argument("-n", type=int, default=10, help="items per user (default 10)")
    r.add_argument("--format", choices=("table", "csv", "json"), default="table")
    r.add_argument("--device", help="cpu, cuda or cuda:N to load the model on (default: the one it was saved for)")
    r.set_defaults(func=cmd_recommend)


def typed_id(x: str, known: np.ndarray, kind: str):
    """A command-line id typed like the model's ids (integers or strings)."""
    if known.dtype.kind not in "iu":
        return x
    try:
        return int(x)
    except ValueError:
        raise UnknownIdError(f"unknown {kind} id {x!r}: this model's {kind} ids are integers "
                             f"like {known[:3].tolist()}") from None


def split_ids(raw) -> list[str]:
    """``["1,2", "3"]`` → ``["1", "2", "3"]``: ids given space- or comma-separated."""
    return [x.strip() for part in raw for x in part.split(",") if x.strip()]


def parse_history(text: str, known: np.ndarray):
    """``"1,50"`` → ``[1, 50]``; ``"50:5,181:3"`` → ``{50: 5.0, 181: 3.0}`` (a rated history).

    An id with a colon in it is taken whole where the model knows it (``urn:p:1``); otherwise the
    text after its last colon is the rating (``urn:p:1:5``).
    """
    parts = split_ids([text])
    if not parts:
        raise RecaeError(f"--history holds no item ids; got {text!r}")
    pairs = [p.rpartition(":") for p in parts]
    # an id the model knows is an id even with a colon in it (urn:p:1); past the last colon, a rating
    names = {str(x) for x in known} if any(sep for _, sep, _ in pairs) else set()
    rated = [sep == ":" and p not in names for p, (_, sep, _) in zip(parts, pairs)]
    if not any(rated):
        return [typed_id(p, known, "item") for p in parts]
    if not all(rated):
        raise RecaeError(f"--history takes item ids (1,50,181) or item:rating pairs (50:5,181:3), not a mix; "
                         f"got {text!r}")
    out = {}
    for item, _, value in pairs:
        try:
            out[typed_id(item.strip(), known, "item")] = float(value)
        except ValueError:
            raise RecaeError(f"--history: the rating in {item}:{value} must be a number") from None
    return out


def user_rows(model, users: list, n: int) -> tuple[list[dict], list]:
    """Rows of the table for known users, ranked in one batch, and the users with no unseen item left."""
    ids, scores = model.recommend(users, n=n)
    done = [u for u, row in zip(users, scores) if not np.isfinite(row).any()]
    return [{"user": user, "rank": r + 1, "item": plain(i), "score": float(s)}
            for user, row_ids, row_scores in zip(users, ids, scores)
            for r, (i, s) in enumerate(zip(row_ids, row_scores)) if np.isfinite(s)], done


def known_users(model, raw: list[str], skip: bool) -> list:
    """The ``--user`` ids typed like the model's; unknown ones raise, or are listed with ``--skip-unknown``."""
    known, unknown = [], []
    index = pd.Index(model.user_ids_)
    for x in raw:
        try:
            user = typed_id(x, model.user_ids_, "user")
        except UnknownIdError:
            if not skip:
                raise
            unknown.append(x)
            continue
        (known if user in index else unknown).append(user)
    if unknown and not skip:
        more = " and more" if len(unknown) > 5 else ""
        fitted_on = (getattr(model, "quality_", None) or {}).get("fitted_on", "")
        why = ("recae tune --no-refit fitted this model without the users its split held out for validation "
               "and test; --history recommends for them, or tune without --no-refit" if "refit=False" in fitted_on
               else f"{fitted_on}; --history recommends for them, or recae fit drops users with fewer than "
                    "--min-user positives" if "recae fit --valid" in fitted_on
               else "recae fit drops users with fewer than --min-user positives, 5 by default")
        raise UnknownIdError(f"unknown user id(s) {unknown[:5]}{more}: not among the model's {len(index):,} "
                             f"training users ({why}); --skip-unknown recommends for the known ones and lists these")
    if unknown:
        warn(f"--skip-unknown: {len(unknown)} unknown user id(s) left out: {', '.join(map(str, unknown[:20]))}"
             + (" ..." if len(unknown) > 20 else ""))
    return known


def cmd_recommend(args) -> int:
    model = Recommender.load(args.model_file, device=args.device)  # an image model file is named as one
    rows = []
    if args.history is not None:
        history = parse_history(args.history, model.item_ids_)
        if isinstance(history, list) and isinstance(model, ExplicitRecommender):
            raise RecaeError(f"{type(model).__name__} folds in ratings: give --history as item:rating pairs, e.g. "
                             f"{','.join(f'{i}:5' for i in history[:2])}; got bare item ids {args.history!r}")
        if isinstance(history, dict) and not isinstance(model, ExplicitRecommender) and any(
                v != 1 for v in history.values()):
            warn(f"{type(model).__name__} ranks from positives: each item:value weighs its item by the value (a "
                 "1-star item counts as a positive, a 3 as three clicks); give the items the user liked, as "
                 "recae fit's --binarize kept them")
        ids, scores = model.recommend_new(history, n=args.n, unknown="ignore")
        rows += [{"user": "(new)", "rank": r + 1, "item": plain(i), "score": float(s)}
                 for r, (i, s) in enumerate(zip(ids, scores))]
    users = known_users(model, split_ids(args.user or []), args.skip_unknown)
    done = []
    if users:
        ranked, done = user_rows(model, users, args.n)
        rows += ranked
    if done:  # a known user missing from the table would read as unknown
        message = f"user(s) {', '.join(map(str, done))} interacted with every item of the model: nothing left to recommend"
        if not rows:
            raise RecaeError(message)
        warn(message)
    if not rows:
        raise RecaeError("give --user ID [ID ...] and/or --history ITEM,ITEM,..."
                         + (" (every --user id was unknown)" if args.user else ""))
    table = pd.DataFrame(rows)
    if args.format == "json":
        print(json.dumps(rows, default=str, indent=1))
    elif args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_string(index=False))
    return 0
