"""Evaluation protocols that use only a model's public API.

Strong generalization calls ``model.recommend_new(fold_in)`` for held-out users; holdout
and temporal splits call ``model.recommend(user_ids)`` for training users. Top-k lists are
then scored against the target part with :mod:`recae.metrics`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .data.splits import HoldoutSplit, StrongSplit
from .exceptions import DataError, NotFittedError
from .metrics import RANKING_METRICS, coverage_at_k

logger = logging.getLogger(__name__)

#: The largest top-k table (users × k int64) that ``evaluate`` allocates.
TABLE_BYTES = 2 << 30
DEFAULT_METRICS = ("ndcg", "recall", "truncated_recall", "precision", "map", "mrr", "hit_rate", "coverage")


def _parts(split, part: str):
    if part not in ("test", "valid"):
        raise DataError(f"part must be 'test' or 'valid'; got {part!r}")
    if isinstance(split, StrongSplit):
        fold_in, target = getattr(split, f"{part}_fold_in"), getattr(split, f"{part}_target")
        if not np.array_equal(fold_in.user_ids, target.user_ids):
            raise DataError(f"the {part} fold-in and target parts must list the same users in the same order "
                            f"({fold_in.n_users} and {target.n_users} users); build them from one log with "
                            "filter_entries, as strong_generalization_split does")
        return fold_in, target
    if isinstance(split, HoldoutSplit):
        target = split.test if part == "test" else split.valid
        if target is None:
            raise DataError("this HoldoutSplit has no validation part; split with valid_size > 0")
        return None, target
    raise DataError(f"split must be a StrongSplit or HoldoutSplit; got {type(split).__name__}")


def check_fitted_on(model, split, part: str = "test") -> None:
    """Refuse a model that was not fitted on ``split.train``: its scores would be silently wrong.

    Held-out users (strong generalization) or held-out entries (holdout) in the model's training
    data inflate every metric; items missing from its catalogue deflate them.

    Parameters
    ----------
    model : Recommender
    split : StrongSplit or HoldoutSplit
    part : {"test", "valid"}
        The held-out part to be scored.

    Raises
    ------
    NotFittedError
        The model is not fitted.
    DataError
        Its items are not the split's, or it was trained on the part's users (strong) or entries (holdout).
    """
    if not getattr(model, "is_fitted", False):
        raise NotFittedError(f"evaluate needs a fitted model; fit this {type(model).__name__} on split.train first")
    fold_in, target = _parts(split, part)
    fix = "fit the model on split.train"
    ours, theirs = np.asarray(model.item_ids_), split.train.item_ids
    if len(ours) != len(theirs) or not np.all(split.train.item_index(ours, unknown="ignore") >= 0):
        missing = int((model.item_columns(theirs, unknown="ignore") < 0).sum())
        raise DataError(f"the model was fitted on {len(ours):,} items, the split's training part has {len(theirs):,} "
                        f"({missing:,} of them unknown to the model); {fix} itself (a bare .matrix numbers the "
                        "items 0..n-1 instead of their ids)")
    if fold_in is not None:
        seen = int((model.user_rows(fold_in.user_ids, unknown="ignore") >= 0).sum())
        if seen:
            raise DataError(f"{seen:,} of the {fold_in.n_users:,} {part} users are among the model's training users, "
                            f"so it would be scored on users it learned; {fix} (strong generalization holds them out)")
        return
    rows = model.user_rows(target.user_ids, unknown="ignore")
    known = rows >= 0
    trained = model.user_items_[rows[known]].tocoo()
    cols = target.item_index(model.item_ids_[trained.col], unknown="ignore")
    inside = cols >= 0
    held = target.matrix[np.flatnonzero(known)]
    leaked = np.asarray(held[trained.row[inside], cols[inside]]).ravel() != 0 if inside.any() else np.zeros(0, bool)
    if leaked.any():
        raise DataError(f"{int(leaked.sum()):,} of the {part} part's {target.nnz:,} held-out entries are in the model's "
                        f"training data, where they count as seen and are never recommended; {fix} (if it was, the "
                        f"split's train and {part} parts overlap: a holdout split holds each entry in one part)")


def top_k_indices(model, split, k: int, part: str = "test", batch_size: int = 2048,
                  show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices (in the split's item index) for every scored user.

    Returns
    -------
    rows : ndarray of shape (n_scored,)
        Row positions (in the target part) of users with a non-empty target.
    top : ndarray of int64, shape (n_scored, k)
        Item indices, ``-1`` for padding.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer; got {batch_size!r}")
    fold_in, target = _parts(split, part)
    rows = np.flatnonzero(np.diff(target.matrix.indptr) > 0)
    top = np.full((len(rows), k), -1, dtype=np.int64)
    batches = range(0, len(rows), batch_size)
    for start in tqdm(batches, desc=f"evaluate {type(model).__name__}", disable=not show_progress, leave=False):
        r = rows[start:start + batch_size]
        if fold_in is not None:
            ids, scores = model.recommend_new(fold_in.take_users(r), n=k, unknown="ignore")
        else:
            ids, scores = model.recommend(target.user_ids[r], n=k)
        flat = target.item_index(ids.ravel(), unknown="ignore").reshape(ids.shape)
        flat[~np.isfinite(scores)] = -1  # padding, by its score: its id -1 may also be a real item's
        top[start:start + batch_size, : ids.shape[1]] = flat
    return rows, top


def evaluate(model, split, k=(20, 50, 100), metrics=DEFAULT_METRICS, *, part: str = "test",
             batch_size: int = 2048, show_progress: bool = False, per_user: bool = False):
    """Rank for every held-out user and average the metrics.

    Parameters
    ----------
    model : fitted Recommender
        Fitted on ``split.train`` (or, for strong generalization, on training users that leave
        the scored part's users out): one fitted on other items, on the held-out users, or on
        the held-out entries is refused with a DataError (see :func:`check_fitted_on`).
    split : StrongSplit or HoldoutSplit
    k : int or sequence of int, default (20, 50, 100)
    metrics : sequence of str
        Names from :data:`recae.metrics.RANKING_METRICS` plus ``"coverage"``.
    part : {"test", "valid"}
    batch_size : int
        Users per ``recommend`` call.
    per_user : bool, default False
        Also return the per-user values as a DataFrame (one column per metric).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``"<metric>@<k>"`` with columns ``mean``, ``se`` and ``n_users``; with
        ``per_user=True`` a ``(summary, per_user)`` pair. ``se`` is the standard error of the
        mean over this split's scored users (sample std / sqrt(n_users)), not a spread over
        seeds: ``recae evaluate`` reports both, as ``se_over_users`` and ``std_over_seeds``.
        ``recall@k`` is hits / |target| and ``truncated_recall@k`` hits / min(k, |target|),
        the "Recall@k" of the autoencoder papers (and of recae's README and bench tables).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        metrics = list(metrics)
        unhashable = [m for m in metrics if not isinstance(m, str)]
    except TypeError:
        raise DataError(f"metrics must be a metric name or a sequence of them; got {metrics!r}") from None
    if unhashable:
        raise DataError(f"metrics must be names (str); got {unhashable[:3]}")
    metrics = list(dict.fromkeys(metrics))  # a name given twice is one row
    if not metrics:
        raise DataError(f"metrics must name at least one metric from {sorted(RANKING_METRICS) + ['coverage']}")
    if isinstance(k, np.ndarray) and k.ndim == 0:
        k = k.item()
    try:
        ks_in = [k] if np.isscalar(k) else list(k)
    except TypeError:  # None or another non-iterable
        raise DataError(f"k must be a positive integer or a sequence of them; got {k!r}") from None
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in ks_in):
        raise DataError(f"k must be a positive integer or a sequence of them; got {k!r}")
    ks = sorted({int(x) for x in ks_in})
    unknown = [m for m in metrics if m not in RANKING_METRICS and m != "coverage"]
    if unknown:
        raise DataError(f"metrics must come from {sorted(RANKING_METRICS) + ['coverage']}; got {unknown}")
    if not ks or ks[0] < 1:
        raise DataError(f"k must be a positive integer or a sequence of them; got {k!r}")
    _, target = _parts(split, part)
    n_rows = int((np.diff(target.matrix.indptr) > 0).sum())
    if n_rows == 0:  # every metric would be NaN: a table of them reads like a result
        raise DataError(f"no user of the split's {part} part has held-out items ({target.n_users:,} users, 0 "
                        "held-out entries), so there is nothing to score; keep users with more interactions "
                        "(min_user / --min-user 5 or more)")
    if n_rows * ks[-1] * 8 > TABLE_BYTES:  # the top-k table is allocated whole
        raise DataError(f"k={ks[-1]} for {n_rows:,} users needs a {n_rows * ks[-1] * 8 / 2**30:.1f} GiB top-k table "
                        f"(at most {TABLE_BYTES / 2**30:.0f} GiB); the catalogue has {target.n_items:,} items, so a k "
                        "past that ranks nothing more")
    check_fitted_on(model, split, part)
    rows, top = top_k_indices(model, split, ks[-1], part, batch_size, show_progress)
    truth = target.matrix[rows]
    summary, columns = [], {}
    for name in metrics:
        for kk in ks:
            label = f"{name}@{kk}"
            if name == "coverage":
                summary.append((label, coverage_at_k(top, target.n_items, kk), np.nan, len(rows)))
                continue
            values = RANKING_METRICS[name](top, truth, kk)
            ok = values[np.isfinite(values)]
            se = ok.std(ddof=1) / np.sqrt(len(ok)) if len(ok) > 1 else np.nan
            summary.append((label, ok.mean() if len(ok) else np.nan, se, len(ok)))
            columns[label] = values
    table = pd.DataFrame(summary, columns=["metric", "mean", "se", "n_users"]).set_index("metric")
    if per_user:
        return table, pd.DataFrame(columns, index=target.user_ids[rows])
    return table
