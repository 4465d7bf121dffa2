"""What a derived log lost on the way: the record a filter keeps, and the warning when most entries go.

:meth:`Interactions.filter <recae.data.Interactions.filter>` appends a :class:`DropRecord`
(the raw ids it removed) to ``Interactions.drops``, which every derived log inherits, so a
later "unknown user" can be told apart from "removed by filter(min_user=5)".
:meth:`~recae.data.Interactions.binarize` and ``filter`` warn with
:class:`~recae.exceptions.DataWarning` when they keep less than :data:`MOST` of the entries,
naming the counts and what to do instead (binarizing real ratings warns below
:data:`RATINGS_SHARE`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..exceptions import DataWarning

logger = logging.getLogger(__name__)

#: A transform or filter that keeps fewer than this share of the entries warns.
MOST = 0.5
#: ``binarize`` of real ratings warns below this share instead: the standard "ratings >= 4" keeps
#: about half of MovieLens (49.98% of ML-20M), which is what was meant.
RATINGS_SHARE = 0.25


@dataclass(frozen=True)
class DropRecord:
    """One filtering step: its call, the raw ids it removed and the sizes before and after.

    ``users``/``items`` hold the removed raw ids; ``before``/``after`` are
    ``(n_users, n_items, nnz)``.
    """

    step: str
    users: np.ndarray
    items: np.ndarray
    before: tuple[int, int, int]
    after: tuple[int, int, int]

    def summary(self) -> str:
        """``"filter(min_user=5, min_item=1) dropped 6,340 of 19,851 users, ..."``."""
        return f"{self.step} dropped {dropped_counts(self.before, self.after)}"


def dropped_counts(before, after) -> str:
    """``"6,340 of 19,851 users, 0 of 4,000 items and 9,120 of 101,000 entries"``."""
    parts = [f"{b - a:,} of {b:,} {name}" for name, b, a in zip(("users", "items", "entries"), before, after)]
    return f"{parts[0]}, {parts[1]} and {parts[2]}"


def reason(drops, user_id) -> str | None:
    """``"removed by filter(min_user=5, min_item=1)"`` for a raw user id a recorded step removed, else None."""
    for record in drops:
        try:
            if user_id in set(record.users.tolist()):
                return f"removed by {record.step}"
        except TypeError:  # an unhashable id: never one of ours
            return None
    return None


def warn_if_most_dropped(step: str, before: int, after: int, advice: str, share: float = MOST,
                         stacklevel: int = 3) -> None:
    """DataWarning when ``step`` kept fewer than ``share`` of ``before`` entries (INFO otherwise)."""
    if before and after < share * before:
        warnings.warn(f"{step} kept {after:,} of {before:,} entries ({after / before:.1%}); {advice}",
                      DataWarning, stacklevel=stacklevel)
    elif after < before:
        logger.info("%s kept %d of %d entries", step, after, before)


def binarize_advice(values: np.ndarray, has_ratings: bool, threshold: float) -> str:
    """What to do instead of ``binarize(threshold)`` on a log holding ``values``."""
    if not len(values):
        return "the log is empty"
    low, high = float(values.min()), float(values.max())
    integral = bool(np.all(values == np.round(values)))
    if not has_ratings and low == high:
        return (f"this log has no ratings (every entry is {low:g}: a (user, item) pair was seen); "
                "binarize is for ratings: use the log as it is")
    if not has_ratings and integral and low >= 1:
        return (f"this log holds event counts ({low:g} to {high:g} per (user, item) pair), not ratings; "
                f"binarize({threshold:g}) keeps only pairs seen more than {threshold:g} times. To use every pair, "
                "skip binarize (from_pandas without rating= gives 1.0 per pair; duplicates='sum' gives counts)")
    return (f"the values range from {low:g} to {high:g} (median {float(np.median(values)):g}); "
            "a lower threshold keeps more")


def filter_advice(counts: np.ndarray, min_user: int, min_item: int) -> str:
    """What to do instead of a k-core filter that removed most entries; ``counts``: entries per user."""
    median = float(np.median(counts)) if len(counts) else 0.0
    return (f"users have a median of {median:g} entries; lower min_user (now {min_user}) or "
            f"min_item (now {min_item}) to keep more")
