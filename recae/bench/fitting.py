"""One search trial's fit and its score: what :mod:`recae.bench.search` and the bench's runs share."""

from __future__ import annotations

import contextlib
import time

from ..evaluate import evaluate
from .spaces import SPACES


def valid_ndcg(model, split) -> float:
    """Validation NDCG@100 of a fitted model (the score every search maximises)."""
    return float(evaluate(model, split, k=100, metrics=("ndcg",), part="valid").loc["ndcg@100", "mean"])


def one_thread():
    """A context that keeps BLAS and OpenMP pools (implicit's included) to one thread, when threadpoolctl is there."""
    try:
        from threadpoolctl import threadpool_limits  # lazy: optional, comes with scikit-learn or the bench extra
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def fit_model(name: str, params: dict, split, max_epochs=None, callbacks=()):
    """Fit ``SPACES[name]`` with ``params`` on ``split.train``; neural models validate (early stopping) on it.

    Returns
    -------
    (model, seconds)
    """
    space = SPACES[name]
    params = dict(params)
    if space.neural and max_epochs is not None:
        params["epochs"] = min(int(max_epochs), int(params.get("epochs", max_epochs)))
    model = space.model_class()(**params)
    extra = {"callbacks": list(callbacks)} if space.neural and callbacks else {}
    t = time.perf_counter()
    model.fit(split.train, valid=split if space.neural else None, **extra)
    return model, time.perf_counter() - t
