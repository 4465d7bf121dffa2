"""Validation of the ranking models: one path, from the model's ranking to :mod:`recae.metrics`.

The trainer's early stopping and the Blend's weight search score validation users this way:
rank the users' fold-in rows with the model (seen items left out), then average the metric
from :data:`recae.metrics.RANKING_METRICS` over users whose target is non-empty.
:func:`recae.evaluate.evaluate` (``part="valid"``, which ``recae bench`` selects trials with)
ranks through the public ``recommend``/``recommend_new`` and averages the same metric functions.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import DataError
from ..metrics import RANKING_METRICS


def check_valid_metric(metric) -> str:
    """A ``"<metric>@<k>"`` name from :data:`recae.metrics.RANKING_METRICS` (``@k`` optional)."""
    name, _, k = str(metric).partition("@")
    if not isinstance(metric, str) or name not in RANKING_METRICS or not (k == "" or k.isdigit() and int(k) > 0):
        raise DataError(f"valid_metric must look like 'ndcg@100' with a metric from {sorted(RANKING_METRICS)}; "
                        f"got {metric!r}")
    return metric


def scored_rows(valid) -> np.ndarray:
    """Rows of a (fold_in, target) pair whose target is non-empty: the users a metric averages over."""
    return np.flatnonzero(np.diff(valid[1].indptr) > 0)


def validation_score(model, valid, metric: str, dense=None) -> float:
    """Mean of ``metric`` (e.g. ``"ndcg@100"``) over validation users with a non-empty target.

    Parameters
    ----------
    model : fitted Recommender
    valid : (fold_in, target) pair of CSR matrices in the model's item index
        (:func:`recae.models.inputs.validation_pair` makes one from a split).
    dense : callable ``(start, stop) -> Tensor``, optional
        Scores of scored rows ``start:stop`` instead of the model's own (the Blend's weighted sums).
    """
    name, _, k = check_valid_metric(metric).partition("@")
    fold_in, target = valid
    k = min(int(k or 100), target.shape[1])  # a small catalogue caps the cutoff
    rows = scored_rows(valid)
    X = fold_in[rows]
    if dense is None:
        top, _ = model.rank_rows(X, k)
    else:
        top, _ = model.top_k(dense, X, len(rows), k)
    return float(np.nanmean(RANKING_METRICS[name](top, target[rows], k)))
