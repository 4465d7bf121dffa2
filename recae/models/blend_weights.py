"""The Blend's weight search: non-negative weights summing to one that maximise a per-user metric.

Kept apart from :class:`~recae.models.Blend` so that studies of other Blend rules
(``benchmarks/blend_cv.py``) search weights exactly as the Blend does, on scores of their own.
"""

from __future__ import annotations

import itertools

import numpy as np


def simplex_grid(n: int, step: float):
    ticks = int(round(1 / step))
    for combo in itertools.product(range(ticks + 1), repeat=n - 1):
        if sum(combo) <= ticks:
            yield np.array([*combo, ticks - sum(combo)], dtype=np.float64) / ticks


def search_weights(users, n: int, grid_step: float = 0.05, bags: int = 30, random_state=0, start=None):
    """Non-negative weights summing to one that maximise a mean per-user metric.

    An exhaustive simplex grid for up to three weights, coordinate ascent beyond (moving
    ``grid_step`` between pairs, from the best of equal weights, each weight alone and ``start``).
    With ``bags`` the search runs on that many bootstrap resamples of the users and the weights
    are the mean of their picks (bagged ensemble selection); the result never scores under the
    best single weight on all users.

    Parameters
    ----------
    users : callable
        ``users(w)`` for weights ``w`` of shape (n,): the metric of every user, shape (n_users,);
        NaN for users it does not count. Called once per distinct ``w`` (cache inside if costly).
    n : int
        Number of weights.
    grid_step : float, default 0.05
    bags : int, default 30
        0: one search on all users.
    random_state : int, default 0
        Seeds the resamples.
    start : ndarray of shape (n,), optional
        A further starting point, summing to one.

    Returns
    -------
    weights : ndarray of shape (n,)
    score : float
        The weights' mean metric over all counted users.
    """
    def score(w: np.ndarray, counts: np.ndarray | None = None) -> float:
        """Mean metric over the users, each counted ``counts`` times (a resample)."""
        v = users(w)
        ok = ~np.isnan(v)
        c = np.ones(len(v)) if counts is None else counts
        return float(np.dot(v[ok], c[ok]) / c[ok].sum()) if c[ok].sum() else float("nan")

    grid = [*simplex_grid(n, grid_step), *([] if start is None else [start])] if n <= 3 else None

    def search(counts=None) -> np.ndarray:
        if grid is not None:  # few weights: the whole simplex grid
            return grid[int(np.argmax([score(w, counts) for w in grid]))]
        # start from the best of equal weights and each one alone (ties keep equal weights)
        starts = [np.full(n, 1.0 / n), *np.eye(n), *([] if start is None else [start])]
        scores = [score(w, counts) for w in starts]
        w, best = starts[int(np.argmax(scores))], max(scores)
        improved = True
        while improved:  # coordinate ascent: move weight mass between pairs
            improved = False
            for i, j in itertools.permutations(range(n), 2):
                if w[j] < grid_step - 1e-12:
                    continue
                trial = w.copy()
                trial[i] += grid_step
                trial[j] -= grid_step
                value = score(trial, counts)
                if value > best + 1e-9:
                    w, best, improved = trial, value, True
        return w

    if not bags:
        w = search()
    else:  # bagged: the mean of the weights chosen on bootstrap resamples of the users
        rng = np.random.default_rng(random_state)
        u = len(users(np.full(n, 1.0 / n)))
        w = np.mean([search(rng.multinomial(u, np.full(u, 1.0 / u)).astype(np.float64)) for _ in range(bags)], axis=0)
    single = max(np.eye(n), key=score)
    if score(single) > score(w) + 1e-12:
        w = single
    return w, score(w)
