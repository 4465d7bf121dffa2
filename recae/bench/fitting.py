"""One search trial's fit and its score, and a search's quiet logging: what :mod:`recae.bench.search`
and the bench's runs share."""

from __future__ import annotations

import contextlib
import logging
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
    quiet = "show_progress" in model.get_params() and "show_progress" not in params
    if quiet:  # a search shows its own progress, not a bar per trial
        own = model.get_params()["show_progress"]
        model.set_params(show_progress=False)
    extra = {"callbacks": list(callbacks)} if space.neural and callbacks else {}
    t = time.perf_counter()
    try:
        model.fit(split.train, valid=split if space.neural else None, **extra)
    finally:
        if quiet:  # the fitted model keeps the setting it was asked for (a refit of it shows its bar)
            model.set_params(show_progress=own)
    return model, time.perf_counter() - t


@contextlib.contextmanager
def quiet_search():
    """Optuna's INFO line per study and trial off, and each of the trainer's warnings (a busy
    machine, say) shown once rather than once per trial, while a search runs; then as before."""
    import optuna  # lazy: the `tune` extra

    level, once = optuna.logging.get_verbosity(), _Once()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    logging.getLogger("recae.train").addFilter(once)
    try:
        yield
    finally:
        logging.getLogger("recae.train").removeFilter(once)
        optuna.logging.set_verbosity(level)


class _Once(logging.Filter):
    """Lets each distinct warning through once."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def filter(self, record) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True
