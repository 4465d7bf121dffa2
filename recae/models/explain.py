"""Why an item is recommended: the history items that contribute most to its score.

Two attributions, both computed through the ``score_rows`` protocol in a few batched calls:

- **exact** (models whose scores are linear in the history row, marked ``additive_scores =
  True``: EASE, LinearAE, SparseEASE, FactorEASE). For such a model f, score_j(x) = Σᵢ xᵢ·B_ij,
  so history item i contributes f(eᵢ·xᵢ)_j − f(0)_j (the score of the one-item row holding
  i's value, less the empty row's score, which is 0 for these models). The contributions of
  all history items add up to the score exactly (up to float rounding): ``baseline +
  sum(contributions) == score``.
- **leave-one-out** (every other model: the neural autoencoders, which normalise their input,
  the Blend, which standardises its members' scores, the rating and factor models): history
  item i contributes f(x)_j − f(x − xᵢ·eᵢ)_j, how much item j's score drops when i alone is
  taken out of the history. These need not add up to the score; for a linear model they
  equal the exact contributions.

Scores are the fold-in scores of the history (what ``recommend_new`` ranks). For a training
user the history is their training row; models whose ``recommend`` uses a learned per-user
vector (CDAE, ImplicitALS, ImplicitBPR, the explicit models) rank by that vector instead, so
their explained score can differ from ``recommend``'s.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..data.batching import row_chunks
from ..data.ids import plain
from ..data.interactions import Interactions
from ..data.sparse import take_rows
from ..data.validate import check_choice
from ..exceptions import DataError, NotFittedError
from .inputs import check_n, is_scalar

__all__ = ["explain", "history_row", "contributions"]

METHODS = ("auto", "exact", "leave-one-out")


def is_user(user_or_history) -> bool:
    """Whether explain's argument is a training user's id (a scalar) rather than a history."""
    return (not isinstance(user_or_history, (dict, Interactions)) and not sp.issparse(user_or_history)
            and is_scalar(user_or_history, "user id"))


def history_row(model, user_or_history, unknown: str = "raise") -> sp.csr_matrix:
    """One user's history as a CSR row ``(1, n_items)`` in the model's item index.

    Parameters
    ----------
    user_or_history : raw user id, or one history (list of item ids, dict item→value, an
        Interactions of one user, or a sparse matrix of shape (1, n_items))
        A scalar is a training user (their training row); anything else is a history.
    """
    if is_user(user_or_history):
        rows = model.user_rows([user_or_history])
        return take_rows(model.user_items_, rows)
    X, _ = model.history_rows(user_or_history, unknown)
    if X.shape[0] != 1:
        raise DataError(f"explain takes one user or one history; got {X.shape[0]} history rows")
    return X


def _target_scores(model, X: sp.csr_matrix, targets: np.ndarray) -> np.ndarray:
    """``score_rows(X)[:, targets]`` as float64 ``(rows, len(targets))``, in memory-bounded row chunks."""
    out = np.empty((X.shape[0], len(targets)), dtype=np.float64)
    cols = torch.as_tensor(targets, device=model.device_)
    for start, stop in row_chunks(X.shape[0], model.n_items_):
        with torch.no_grad():
            out[start:stop] = model.score_rows(X[start:stop]).index_select(1, cols).double().cpu().numpy()
    return out


def contributions(model, X: sp.csr_matrix, targets: np.ndarray, method: str = "auto"):
    """Per-history-item contributions to the scores of the items ``targets``.

    Parameters
    ----------
    X : csr_matrix of shape (1, n_items)
        One history row in the model's item index.
    targets : ndarray of int64, shape (n_targets,)
        Item positions to explain.
    method : {"auto", "exact", "leave-one-out"}
        "auto": exact for models with ``additive_scores``, else leave-one-out.

    Returns
    -------
    history : ndarray of int64, shape (k,)
        The history's item positions (the rows of ``contrib``).
    contrib : ndarray of float64, shape (k, n_targets)
    scores : ndarray of float64, shape (n_targets,)
        The model's scores of the targets for this history.
    baseline : ndarray of float64, shape (n_targets,)
        Exact: the empty history's scores (``baseline + contrib.sum(0) == scores``); leave-one-out: zeros.
    method : str
        The method used.
    """
    check_choice(method, "method", METHODS)
    additive = bool(getattr(model, "additive_scores", False))
    if method == "auto":
        method = "exact" if additive else "leave-one-out"
    elif method == "exact" and not additive:
        raise DataError(f"exact explanations need a model whose scores are linear in the history; "
                        f"{type(model).__name__} is not (use method='leave-one-out')")
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sum_duplicates()
    cols, vals, k, n_items = X.indices.astype(np.int64), X.data, X.nnz, model.n_items_
    if method == "exact":
        # k one-item rows eᵢ·xᵢ, then the empty row and the full row, in one batch
        parts = [sp.csr_matrix((vals, (np.arange(k), cols)), shape=(k, n_items)),
                 sp.csr_matrix((1, n_items), dtype=np.float32), X]
        S = _target_scores(model, sp.vstack(parts, format="csr"), targets)
        baseline, scores = S[k], S[k + 1]
        contrib = S[:k] - baseline
    else:
        # row r is the history without its r-th item; the last row is the full history
        keep = ~np.eye(k, dtype=bool)
        rows = np.repeat(np.arange(k), k - 1)
        loo = sp.csr_matrix((np.tile(vals, k)[keep.ravel()], (rows, np.tile(cols, k)[keep.ravel()])),
                            shape=(k, n_items))
        S = _target_scores(model, sp.vstack([loo, X], format="csr"), targets)
        scores, baseline = S[k], np.zeros(len(targets))
        contrib = scores - S[:k]
    return cols, contrib, scores, baseline, method


def explain(model, user_or_history, item_ids, n: int = 5, *, method: str = "auto", unknown: str = "raise"):
    """Why ``item_ids`` score as they do for one user or history.

    Parameters
    ----------
    model : fitted Recommender
    user_or_history : raw user id, or one history (list of item ids, dict item→value, an
        Interactions of one user)
    item_ids : raw item id or array-like of shape (n_items,)
        The items to explain (e.g. the ids ``recommend`` returned).
    n : int, default 5
        How many history items to list per explained item, largest contribution first.
    method : {"auto", "exact", "leave-one-out"}
        See the module docstring; "auto" takes exact where the model is linear.
    unknown : {"raise", "ignore"}
        Unknown history items, as in ``recommend_new``.

    Returns
    -------
    list of dict, one per item in ``item_ids`` order, JSON-ready:
        ``{"item", "score", "method", "baseline", "contributions": [{"item", "contribution",
        "share"}, ...]}``. ``share`` is the contribution over the sum of the absolute
        contributions of all history items (signed; absolute shares over the whole history
        sum to 1). With method "exact", ``baseline`` plus all contributions is ``score``. A
        history with nothing to fold in (empty; for a model of positives also only zeros, or only
        items no training user had) is ranked
        by popularity, as ``recommend_new`` ranks it (and ``recommend`` a training user with an empty
        row): method "popularity", the score the item's training count, no contributions.
    """
    if not model.is_fitted:
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit(data) (or recae.load) first")
    n = check_n(n)
    check_choice(method, "method", METHODS)
    X = history_row(model, user_or_history, unknown)
    raw_items = [item_ids] if is_scalar(item_ids, "item ids") else list(item_ids)
    targets = model.item_columns(raw_items)
    if getattr(model, "empty_history_fallback", False) and len(model.unfolded_rows(X)):
        # recommend(_new) ranks a row with nothing to fold in by training popularity, which no
        # history item contributes to: the score is the item's count, all of it baseline
        counts = np.asarray(model.item_counts(), dtype=np.float64)[targets]
        return [{"item": plain(raw), "score": float(c), "method": "popularity", "baseline": float(c),
                 "contributions": []} for raw, c in zip(raw_items, counts)]
    hist, contrib, scores, baseline, used = contributions(model, X, targets, method)
    total = np.abs(contrib).sum(axis=0)
    out = []
    for t, raw in enumerate(raw_items):
        order = np.argsort(-contrib[:, t], kind="stable")[:n]
        out.append({"item": plain(raw), "score": float(scores[t]), "method": used, "baseline": float(baseline[t]),
                    "contributions": [{"item": plain(model.item_ids_[hist[i]]), "contribution": float(contrib[i, t]),
                                       "share": float(contrib[i, t] / total[t]) if total[t] > 0 else 0.0}
                                      for i in order]})
    return out
