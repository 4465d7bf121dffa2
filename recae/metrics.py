"""Vectorised ranking and rating metrics for collaborative filtering.

All ranking metrics take the same three arguments:

top : ndarray of int, shape (n_users, k_max)
    Recommended item indices per user, best first. ``-1`` marks an empty
    slot (padding for users with fewer candidates) and is never a hit.
truth : scipy.sparse matrix or array, shape (n_users, n_items)
    Held-out relevant items. Every stored entry with a nonzero value is
    relevant (binary gain); explicit zeros are ignored. Any sparse format
    is accepted and it is never densified.
k : int
    Cutoff, ``1 <= k <= top.shape[1]``.

and return a float64 array of shape (n_users,), one value per user. Users
with no relevant items get NaN, since every metric is undefined (or
meaningless) for them; aggregate with ``np.nanmean`` or mask them out.

Two recall variants exist and papers are often ambiguous about which one
they report:

* :func:`recall_at_k` is the standard ``hits@k / |T_u|``.
* :func:`truncated_recall_at_k` is ``hits@k / min(k, |T_u|)``, the form used
  by Liang et al. (2018), "Variational Autoencoders for Collaborative
  Filtering", and most autoencoder papers following it. It reaches 1.0
  whenever the top-k list is entirely relevant, even if ``|T_u| > k``.
"""

from numbers import Integral

import numpy as np
import scipy.sparse as sp

from .exceptions import DataError

__all__ = [
    "hits", "ndcg_at_k", "recall_at_k", "truncated_recall_at_k", "precision_at_k",
    "average_precision_at_k", "map_at_k", "reciprocal_rank_at_k", "mrr_at_k",
    "hit_rate_at_k", "coverage_at_k", "rmse", "mae", "RANKING_METRICS",
]


def _check_top(top, k, n_items):
    """Validate ``top``, ``k`` and the index range; return ``top[:, :k]``."""
    top = np.asarray(top)
    if top.ndim != 2:
        raise DataError(f"top must be 2-D (n_users, k_max), got shape {top.shape}")
    if not np.issubdtype(top.dtype, np.integer):
        raise DataError(f"top must have an integer dtype, got {top.dtype}")
    if k is None:
        k = top.shape[1]
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= top.shape[1]:
        raise DataError(
            f"k must be an int with 1 <= k <= top.shape[1] = {top.shape[1]}, got k={k!r}"
        )
    top = top[:, :k]
    if top.size:
        # Only the first k columns matter; garbage beyond the cutoff is allowed.
        lo, hi = int(top.min()), int(top.max())
        if lo < -1:
            raise DataError(f"top indices must be >= -1 (-1 = padding), got min {lo}")
        if hi >= n_items:
            raise DataError(f"top indices must be < n_items = {n_items}, got max {hi}")
        ranked = np.sort(top, axis=1)
        repeat = (ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] >= 0)
        if repeat.any():  # a repeated item would count as a hit twice
            row = int(np.flatnonzero(repeat.any(axis=1))[0])
            item = int(ranked[row, 1:][repeat[row]][0])
            raise DataError(f"top must list each item at most once per row; row {row} repeats item {item}")
    return top.astype(np.int64, copy=False)


def _hits_and_counts(top, truth, k):
    """Return the (n_users, k) hit matrix and the number of relevant items per user."""
    if isinstance(truth, np.ndarray) and truth.ndim == 2 and truth.dtype.kind in "biuf":
        truth = sp.csr_matrix(truth)
    if not sp.issparse(truth):
        raise DataError(f"truth must be a scipy.sparse matrix or a 2-D numeric array (n_users, n_items), got "
                        f"{type(truth).__name__}" + (f" of shape {truth.shape}, dtype {truth.dtype}"
                                                      if isinstance(truth, np.ndarray) else ""))
    if truth.ndim != 2:
        raise DataError(f"truth must be 2-D (n_users, n_items), got shape {truth.shape}")
    n_users, n_items = truth.shape
    top_shape = np.shape(top)
    if len(top_shape) == 2 and top_shape[0] != n_users:
        raise DataError(
            f"top and truth must have the same number of rows: top.shape={top_shape}, "
            f"truth.shape={truth.shape}"
        )
    top = _check_top(top, k, n_items)

    # Copy so canonicalising (sorting, summing duplicates) never mutates the
    # caller's matrix; afterwards row-major keys are globally sorted.
    csr = sp.csr_matrix(truth, copy=True)
    csr.sum_duplicates()
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(csr.indptr))
    nz = csr.data != 0
    keys = rows[nz] * n_items + csr.indices[nz].astype(np.int64)
    n_rel = np.bincount(rows[nz], minlength=n_users)

    valid = top >= 0
    # Padding must be masked: row * n_items - 1 is the key of the previous
    # user's last item and could otherwise be a false hit.
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + top
    if keys.size == 0:
        return np.zeros(top.shape, dtype=bool), n_rel
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (keys[pos] == query) & valid, n_rel


def _per_user(num, den, n_rel):
    """``num / den`` as float64, NaN for users without relevant items."""
    num = np.asarray(num, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=n_rel > 0)
    return out


def hits(top, truth, k=None):
    """Whether each of the first ``k`` recommendation slots is relevant.

    Parameters
    ----------
    top : ndarray of int, shape (n_users, k_max)
        Recommended item indices, best first; ``-1`` is padding.
    truth : scipy.sparse matrix, shape (n_users, n_items)
        Relevant items (stored nonzero entries).
    k : int, optional
        Cutoff; defaults to ``top.shape[1]``.

    Returns
    -------
    ndarray of bool, shape (n_users, k)
    """
    return _hits_and_counts(top, truth, k)[0]


def ndcg_at_k(top, truth, k):
    """Normalised discounted cumulative gain at ``k`` with binary gains.

    DCG sums ``1 / log2(rank + 1)`` over hit ranks (rank starts at 1); the
    ideal DCG places ``min(|T_u|, k)`` hits at the top.
    """
    h, n_rel = _hits_and_counts(top, truth, k)
    disc = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
    dcg = h @ disc
    idcg = np.concatenate(([1.0], np.cumsum(disc)))[np.minimum(n_rel, h.shape[1])]
    return _per_user(dcg, idcg, n_rel)


def recall_at_k(top, truth, k):
    """Standard recall at ``k``: ``hits@k / |T_u|``.

    Bounded by ``k / |T_u|`` when a user has more than ``k`` relevant items;
    see :func:`truncated_recall_at_k` for the variant used in AE papers.
    """
    h, n_rel = _hits_and_counts(top, truth, k)
    return _per_user(h.sum(axis=1), n_rel, n_rel)


def truncated_recall_at_k(top, truth, k):
    """Truncated recall at ``k``: ``hits@k / min(k, |T_u|)``.

    This is the "Recall@k" of Liang et al. (2018) (Mult-VAE) and most later
    autoencoder papers; it equals :func:`recall_at_k` when ``|T_u| <= k``.
    """
    h, n_rel = _hits_and_counts(top, truth, k)
    return _per_user(h.sum(axis=1), np.minimum(n_rel, h.shape[1]), n_rel)


def precision_at_k(top, truth, k):
    """Precision at ``k``: ``hits@k / k`` (padding slots count as misses)."""
    h, n_rel = _hits_and_counts(top, truth, k)
    return _per_user(h.sum(axis=1), h.shape[1], n_rel)


def average_precision_at_k(top, truth, k):
    """Average precision at ``k``.

    Sum of precision@i over hit ranks ``i <= k``, divided by
    ``min(k, |T_u|)``. :func:`map_at_k` is an alias; average the per-user
    values (ignoring NaN) to obtain MAP@k.
    """
    h, n_rel = _hits_and_counts(top, truth, k)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    return _per_user((prec * h).sum(axis=1), np.minimum(n_rel, h.shape[1]), n_rel)


def reciprocal_rank_at_k(top, truth, k):
    """Reciprocal rank of the first hit within the top ``k``; 0 if none.

    :func:`mrr_at_k` is an alias; averaging gives MRR@k.
    """
    h, n_rel = _hits_and_counts(top, truth, k)
    any_hit = h.any(axis=1)
    rr = np.where(any_hit, 1.0 / (np.argmax(h, axis=1) + 1), 0.0)
    return _per_user(rr, 1.0, n_rel)


def hit_rate_at_k(top, truth, k):
    """1.0 if at least one of the top ``k`` items is relevant, else 0.0."""
    h, n_rel = _hits_and_counts(top, truth, k)
    return _per_user(h.any(axis=1), 1.0, n_rel)


map_at_k = average_precision_at_k
mrr_at_k = reciprocal_rank_at_k


def coverage_at_k(top, n_items, k):
    """Catalogue coverage: fraction of the ``n_items`` items recommended at least once.

    Parameters
    ----------
    top : ndarray of int, shape (n_users, k_max)
        Recommended item indices; ``-1`` padding is ignored.
    n_items : int
        Catalogue size, > 0.
    k : int
        Cutoff, ``1 <= k <= top.shape[1]``.

    Returns
    -------
    float
    """
    if isinstance(n_items, bool) or not isinstance(n_items, Integral) or n_items < 1:
        raise DataError(f"n_items must be a positive int, got {n_items!r}")
    top = _check_top(top, k, n_items)
    items = top[top >= 0]
    return float(np.count_nonzero(np.bincount(items, minlength=n_items)) / n_items)


def _check_ratings(y_true, y_pred):
    """Validate a pair of rating vectors and return them as float64."""
    try:
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y_true and y_pred must be numbers; {exc}") from None
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise DataError(
            f"y_true and y_pred must be 1-D, got shapes {y_true.shape} and {y_pred.shape}"
        )
    if y_true.size != y_pred.size:
        raise DataError(
            f"y_true and y_pred must have equal length, got {y_true.size} and {y_pred.size}"
        )
    if y_true.size == 0:
        raise DataError("y_true and y_pred must be non-empty, got length 0")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise DataError("y_true and y_pred must be finite, got NaN or inf")
    return y_true, y_pred


def rmse(y_true, y_pred):
    """Root mean squared error between two 1-D rating vectors.

    Returns
    -------
    float
    """
    y_true, y_pred = _check_ratings(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def mae(y_true, y_pred):
    """Mean absolute error between two 1-D rating vectors.

    Returns
    -------
    float
    """
    y_true, y_pred = _check_ratings(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


#: Short names used in result tables -> per-user metric ``f(top, truth, k)``.
RANKING_METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "truncated_recall": truncated_recall_at_k,
    "precision": precision_at_k,
    "map": average_precision_at_k,
    "mrr": reciprocal_rank_at_k,
    "hit_rate": hit_rate_at_k,
}
