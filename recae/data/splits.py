"""Seeded train/validation/test splits that share the item index.

* :func:`holdout_split` — random per-user holdout (weak generalization: same users).
* :func:`temporal_split` — leave the last *k* interactions of every user out.
* :func:`strong_generalization_split` — held-out users split into fold-in and target parts
  (Liang et al., "Variational Autoencoders for Collaborative Filtering", WWW 2018).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..exceptions import DataError, DataWarning
from .interactions import Interactions, check_interactions
from .sparse import entry_rows
from .validate import check_int, check_real, make_rng


@dataclass(frozen=True)
class HoldoutSplit:
    """Same users and items in every part; each user's entries are divided between them.

    Attributes
    ----------
    train, test : Interactions
        Same shape and ids; ``test`` holds the held-out entries.
    valid : Interactions or None
        Held-out entries for model selection, when asked for.
    """

    train: Interactions
    test: Interactions
    valid: Interactions | None = None

    protocol = "holdout"


@dataclass(frozen=True)
class StrongSplit:
    """Training users, and disjoint validation and test users split into fold-in and target.

    All parts share ``train.item_ids`` (items seen in training). A held-out user's fold-in
    part is the model's input and the target part what it should rank highly; users with an
    empty target are not scored.
    """

    train: Interactions
    valid_fold_in: Interactions
    valid_target: Interactions
    test_fold_in: Interactions
    test_target: Interactions

    protocol = "strong"


def _rank_within_rows(indptr: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each stored entry within its row, ordering entries by ``keys``.

    The first key is the primary one; later keys break ties (as in :func:`numpy.lexsort`,
    whose key order is the reverse).
    """
    rows = entry_rows(indptr)
    order = np.lexsort((*keys[::-1], rows))
    ranks = np.empty(len(rows), dtype=np.int64)
    ranks[order] = np.arange(len(rows)) - indptr[rows[order]]
    return ranks


def _check_fraction(name: str, value: float) -> float:
    return check_real(value, name, 0.0, 1.0, high_open=True)


def _heldout_users(data: Interactions, n_heldout, parts: int) -> int:
    """Users per held-out part from a fraction or a count, leaving at least one training user."""
    if isinstance(n_heldout, (bool, np.bool_)) or not isinstance(n_heldout, (int, float, np.integer, np.floating)):
        raise DataError(f"n_heldout must be a fraction of users (float) or a count (int); got {n_heldout!r}")
    if isinstance(n_heldout, (float, np.floating)) and not 0.0 < n_heldout < 1 / parts:  # NaN fails this too
        raise DataError(f"n_heldout as a fraction must be in (0, {1 / parts:g}); got {n_heldout}")
    # floor with a relative tolerance: 0.29 × 100 is 28.999999999999996 in floats (and × 10⁸ is 28999999.999999996)
    n = int(np.floor(n_heldout * data.n_users * (1 + 1e-12))) if isinstance(n_heldout, (float, np.floating)) \
        else int(n_heldout)
    if n < 1:
        # a fraction needs 1 / fraction users for one held-out user per part, and one more to train on
        fraction = isinstance(n_heldout, (float, np.floating))
        need = max(parts + 1, int(np.ceil(1 / n_heldout - 1e-9))) if fraction else parts + 1
        raise DataError(f"n_heldout {n_heldout!r} of {data.n_users} users gives 0 users per held-out part; "
                        f"this needs at least {need} users, or a larger n_heldout")
    if parts * n >= data.n_users:
        raise DataError(f"n_heldout gives {n} users per held-out part, but {data.n_users} users cannot "
                        "leave at least one training user; use a smaller n_heldout")
    return n


def _fold_parts(data: Interactions, fraction: float, min_items: int, rng) -> tuple[Interactions, Interactions]:
    """Split every row: ``floor(fraction * n_u)`` random entries to the target part.

    Rows with fewer than ``min_items`` entries keep everything in the fold-in part.
    """
    n_u = np.diff(data.matrix.indptr)
    n_target = np.where(n_u >= min_items, np.floor(fraction * n_u + 1e-9).astype(np.int64), 0)
    ranks = _rank_within_rows(data.matrix.indptr, rng.random(data.nnz))
    target = ranks < np.repeat(n_target, n_u)
    return data.filter_entries(~target), data.filter_entries(target)


def _warn_if_empty(parts: dict, call: str, why: str) -> None:
    """A DataWarning for each held-out part left without entries (nothing to score there)."""
    for name, part in parts.items():
        if part is not None and part.nnz == 0:
            warnings.warn(f"{call}: the {name} part is empty ({why})", DataWarning, stacklevel=3)


def holdout_split(data: Interactions, test_size: float = 0.2, valid_size: float = 0.0, *,
                  min_items: int = 2, random_state: int | None = 0) -> HoldoutSplit:
    """Random per-user holdout.

    Parameters
    ----------
    data : Interactions
    test_size, valid_size : float
        Fractions of each user's entries held out (rounded down per user).
    min_items : int, default 2
        Users with fewer entries keep all of them in ``train``.
    random_state : int or None

    Returns
    -------
    HoldoutSplit
        Parts of the same shape as ``data``.
    """
    check_interactions(data)
    test_size = _check_fraction("test_size", test_size)
    valid_size = _check_fraction("valid_size", valid_size)
    min_items = check_int(min_items, "min_items", 0)
    if test_size + valid_size >= 1.0:
        raise DataError(f"test_size + valid_size must be < 1; got {test_size} + {valid_size}")
    rng = make_rng(random_state)
    n_u = np.diff(data.matrix.indptr)
    eligible = n_u >= min_items
    n_test = np.where(eligible, np.floor(test_size * n_u + 1e-9), 0).astype(np.int64)
    n_valid = np.where(eligible, np.floor(valid_size * n_u + 1e-9), 0).astype(np.int64)
    ranks = _rank_within_rows(data.matrix.indptr, rng.random(data.nnz))
    t = np.repeat(n_test, n_u)
    v = np.repeat(n_valid, n_u)
    is_test = ranks < t
    is_valid = (ranks >= t) & (ranks < t + v)
    valid = data.filter_entries(is_valid) if valid_size > 0 else None
    test = data.filter_entries(is_test)
    _warn_if_empty({"test": test if test_size > 0 else None, "validation": valid},
                   f"holdout_split(test_size={test_size:g}, valid_size={valid_size:g})",
                   f"a user needs at least {min_items} entries, and 1 / size of them, to give one; raise the size")
    return HoldoutSplit(data.filter_entries(~is_test & ~is_valid), test, valid)


def temporal_split(data: Interactions, k: int = 1, valid_k: int = 0) -> HoldoutSplit:
    """Leave each user's last ``k`` entries (by timestamp) for test, the ``valid_k`` before for validation.

    Users with at most ``k + valid_k`` entries keep all of them in ``train``. Ties in time
    are broken by item index (the higher column counts as newer), so the split is
    deterministic.
    """
    check_interactions(data)
    k, valid_k = check_int(k, "k"), check_int(valid_k, "valid_k")
    if data.timestamps is None:
        raise DataError("temporal_split needs timestamps; build the Interactions with timestamp=<column>")
    if k < 1 or valid_k < 0:
        raise DataError(f"k must be >= 1 and valid_k >= 0; got k={k}, valid_k={valid_k}")
    n_u = np.diff(data.matrix.indptr)
    # rank from the end: newest entry gets rank 0
    # (an epsilon added to the timestamp would vanish in float64 at epoch-second magnitudes)
    ranks = _rank_within_rows(data.matrix.indptr, -data.timestamps, -data.matrix.indices.astype(np.int64))
    eligible = np.repeat(n_u > k + valid_k, n_u)
    is_test = eligible & (ranks < k)
    is_valid = eligible & (ranks >= k) & (ranks < k + valid_k)
    valid = data.filter_entries(is_valid) if valid_k > 0 else None
    test = data.filter_entries(is_test)
    _warn_if_empty({"test": test, "validation": valid}, f"temporal_split(k={k}, valid_k={valid_k})",
                   f"only users with more than k + valid_k = {k + valid_k} entries give any; lower k")
    return HoldoutSplit(data.filter_entries(~is_test & ~is_valid), test, valid)


def strong_generalization_split(data: Interactions, n_heldout: float | int = 0.1, target_fraction: float = 0.2, *,
                                min_items: int = 5, random_state: int | None = 98765) -> StrongSplit:
    """Strong generalization: validation and test users never seen in training.

    Follows the protocol of Liang et al. (2018): shuffle users with a seeded permutation,
    hold out ``n_heldout`` validation and ``n_heldout`` test users, train on the rest, keep
    only items seen in training, and split each held-out user's remaining items into a
    fold-in part and a random ``target_fraction`` target part (users with fewer than
    ``min_items`` items keep all as fold-in and are not scored).

    Parameters
    ----------
    data : Interactions
        Usually ``load(...).binarize(3.5).filter(min_user=5)``.
    n_heldout : float or int, default 0.1
        Users per held-out part: a fraction of all users (``int(f * n_users)``) or a count.
    target_fraction : float, default 0.2
    min_items : int, default 5
    random_state : int or None, default 98765

    Returns
    -------
    StrongSplit
    """
    check_interactions(data)
    target_fraction = _check_fraction("target_fraction", target_fraction)
    min_items = check_int(min_items, "min_items", 0)
    n = _heldout_users(data, n_heldout, parts=2)
    rng = make_rng(random_state)
    perm = rng.permutation(data.n_users)
    train_rows, valid_rows, test_rows = perm[: -2 * n], perm[-2 * n: -n], perm[-n:]
    train = data.take_users(np.sort(train_rows))
    seen = np.flatnonzero(np.bincount(train.matrix.indices, minlength=data.n_items) > 0)
    train = train.take_items(seen)
    parts = []
    for rows in (valid_rows, test_rows):
        held = data.take_users(np.sort(rows)).take_items(seen)
        parts.extend(_fold_parts(held, target_fraction, min_items, rng))
    _warn_if_empty({"validation target": parts[1], "test target": parts[3]}, "strong_generalization_split",
                   f"held-out users need at least {min_items} entries (min_items) on items training users have")
    return StrongSplit(train, *parts)


def validation_split(data: Interactions, n_heldout: float | int = 0.1, target_fraction: float = 0.2, *,
                     min_items: int = 5, random_state: int | None = 98765
                     ) -> tuple[Interactions, tuple[Interactions, Interactions]]:
    """Hold out validation users only: ``(train, (fold_in, target))`` for ``fit(train, valid=...)``.

    The strong-generalization protocol of :func:`strong_generalization_split` without a test
    part (``recae fit --valid``): ``n_heldout`` users (a fraction or a count) leave training,
    their items seen in training split into fold-in and a random ``target_fraction`` target.
    """
    check_interactions(data)
    target_fraction = _check_fraction("target_fraction", target_fraction)
    min_items = check_int(min_items, "min_items", 0)
    n = _heldout_users(data, n_heldout, parts=1)
    rng = make_rng(random_state)
    perm = rng.permutation(data.n_users)
    train = data.take_users(np.sort(perm[n:]))
    seen = np.flatnonzero(np.bincount(train.matrix.indices, minlength=data.n_items) > 0)
    held = data.take_users(np.sort(perm[:n])).take_items(seen)
    return train.take_items(seen), _fold_parts(held, target_fraction, min_items, rng)
