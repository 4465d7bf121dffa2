"""Anomaly scores from reconstruction error, for images and for recommender users.

An autoencoder learns to reconstruct what it was trained on; inputs it reconstructs badly
are unlike the training data (Japkowicz, Myers, Gluck, "A novelty detection approach to
classification", IJCAI 1995; Sakurada & Yairi, "Anomaly detection using autoencoders with
nonlinear dimensionality reduction", MLSDA 2014). Images use
:meth:`recae.image.ImageAutoencoder.anomaly_score`; this module adds the same idea for
recommenders (:func:`user_anomaly_scores`), the AUROC used to grade a score, and the
threshold helper.

What a user score means, and its limits
---------------------------------------
``user_anomaly_scores`` folds each user's history into the model and asks how well the
model's output explains that same history. With ``method="nll"`` the output scores are
turned into a distribution over the catalogue by a softmax (for Mult-DAE/VAE, RecVAE and
CDAE this is exactly the multinomial they were trained with) and the score is the mean
negative log-probability of the user's own items, i.e. the multinomial NLL divided by the
number of items. With ``method="rank"`` it is the mean rank percentile of the user's items
among all items (0 = at the top, 0.5 = what random items get), which is defined for every
model, including EASE and ALS whose scores are not logits.

A high score says the account's items do not hang together the way most accounts' items
do: random clicking, a shared or hijacked account, a bot, a scraper. It does **not** say
why, and it is not calibrated: the values depend on the model, the catalogue size and the
user's activity (very short histories are noisy, very long ones average towards the
middle), and users with rare-but-genuine tastes (niche genres, unpopular items) score high
too. Users seen in training are partly memorised: in recae's planted test (random-item users
among group-structured ones) a Mult-DAE still separated its own training users by NLL, but
EASE (l2=10) ranking its own training users' items put the random ones *lower* (AUROC 0.13), while
both separated new users perfectly. So score accounts with a model fit on other users when
possible, and compare scores only within one model. Use the score to
rank accounts for a closer look, with a threshold chosen on data where the answer is known.
"""

from __future__ import annotations

import numpy as np
import torch

from .data.batching import csr_coords, row_chunks
from .exceptions import DataError, NotFittedError, ShapeError


def auroc(scores, labels) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random negative.

    Computed from ranks (the Mann-Whitney U statistic); ties count one half.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Higher means more likely positive (anomalous).
    labels : array-like of bool or {0, 1}, shape (n,)
        True / 1 for positives.

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    DataError
        Mismatched lengths, non-finite scores, or only one class present.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ShapeError(f"scores and labels must have the same length; got {s.shape[0]} and {y.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise DataError("scores hold NaN or infinite values")
    y = _binary_labels(y)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise DataError(f"AUROC needs both classes; got {n_pos} positive and {n_neg} negative labels")
    import scipy.stats  # on use: importing it costs recae's every start about a second

    ranks = scipy.stats.rankdata(s)  # average ranks for ties
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _binary_labels(y: np.ndarray) -> np.ndarray:
    """Labels as bools: True/False or 1/0 only. scikit-learn's outlier labels (+1 normal, -1
    anomaly), strings and NaN would all read as True, flagging everything."""
    if y.dtype == bool:
        return y
    if not (np.issubdtype(y.dtype, np.number) and np.isin(y, (0, 1)).all()):
        odd = [v for v in dict.fromkeys(y.tolist()) if isinstance(v, str) or v not in (0, 1)][:5]
        raise DataError(f"labels must be True/False or 1/0 (1: anomaly); got values such as {odd}"
                        + (" (scikit-learn's outlier labels? use labels == -1)" if -1 in odd else ""))
    return y.astype(bool)


def choose_threshold(scores, labels=None, *, max_false_positive_rate: float = 0.01) -> float:
    """A score threshold chosen on validation data; scores above it are flagged.

    Parameters
    ----------
    scores : array-like of shape (n,)
    labels : array-like of bool of shape (n,), optional
        True for known anomalies. When given, the threshold maximises F1 over the
        candidate cut points; otherwise all scores are taken as normal.
    max_false_positive_rate : float in (0, 1), default 0.01
        Without labels: the threshold is the (1 - rate) quantile of the normal scores, so
        about that share of normal data is flagged.

    Returns
    -------
    float
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise DataError(f"scores must be a non-empty array of finite numbers; got {s.size} value(s)")
    if labels is None:
        rate = max_false_positive_rate
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)) \
                or not 0 < rate < 1:
            raise DataError(f"max_false_positive_rate must be a number in (0, 1); got {rate!r}")
        return float(np.quantile(s, 1.0 - rate))
    y = np.asarray(labels).ravel()
    if y.shape != s.shape:
        raise ShapeError(f"scores and labels must have the same length; got {s.size} and {y.size}")
    y = _binary_labels(y)
    if not y.any():
        raise DataError("labels mark no anomalies; pass labels=None to threshold on normal data")
    if y.all():
        raise DataError("labels mark every score as an anomaly; a threshold needs normal ones too")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    flagged = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (flagged + y.sum())
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # cut only between distinct scores
    best = int(np.argmax(np.where(last, f1, -1.0)))
    below = s_sorted[best + 1] if best + 1 < len(s) else s_sorted[best] - 1.0
    return float((s_sorted[best] + below) / 2.0)


@torch.no_grad()
def user_anomaly_scores(model, data, method: str = "nll") -> np.ndarray:
    """Per-user reconstruction-error score of a fitted recommender (see the module docstring).

    Parameters
    ----------
    model : a fitted recae Recommender
    data : Interactions or scipy.sparse matrix of shape (n_users, n_items)
        Users' histories; an Interactions is aligned to the model's items by raw id (unknown
        items are an error), a sparse matrix must follow the model's item index.
    method : {"nll", "rank"}, default "nll"
        ``"nll"``: mean −log softmax(scores) over the user's items (natural for the
        multinomial autoencoders). ``"rank"``: mean rank percentile of the user's items
        (0 best, about 0.5 for random items), for any model.

    Returns
    -------
    ndarray of float32, shape (n_users,)
        Higher is more unusual; NaN for users with no items.
    """
    if method not in ("nll", "rank"):
        raise DataError(f"method must be 'nll' or 'rank'; got {method!r}")
    if not model.is_fitted:
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit(data) (or recae.load) first")
    X, _ = model.history_rows(data, "raise")
    out = np.full(X.shape[0], np.nan, dtype=np.float32)
    for start, stop in row_chunks(X.shape[0], X.shape[1]):
        rows = X[start:stop]
        scores = model.score_rows(rows).float()
        own = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        own[csr_coords(rows, scores.device)] = True  # every stored entry is one of the user's items
        count = own.sum(dim=1)
        if method == "nll":
            per_item = -torch.log_softmax(torch.nan_to_num(scores, nan=-1e30), dim=1)
        else:
            # rank percentile: share of items scored strictly higher, ties counted half
            sorted_scores = torch.sort(scores, dim=1).values
            higher = scores.shape[1] - torch.searchsorted(sorted_scores, scores, right=True)
            ties = torch.searchsorted(sorted_scores, scores, right=True) - torch.searchsorted(sorted_scores, scores)
            per_item = (higher + (ties - 1) / 2.0) / max(scores.shape[1] - 1, 1)
        total = (per_item * own).sum(dim=1)
        value = torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))
        out[start:stop] = value.cpu().numpy()
    return out
