"""The data and splits `recae bench` runs on.

Protocols (see ../shared/docs/evaluation.md for the reference one):

- ``strong``: strong generalization. 10% of users held out for validation and 10% for test;
  each held-out user's items split 80/20 into fold-in (the model's input, folded in without
  retraining) and target. One split per seed.
- ``holdout``: every user in training; 20% of each user's items for test and 10% for
  validation, at random. One split per seed.
- ``temporal``: leave-last-out by timestamp; each user's newest positive is the test target,
  the one before it the validation target. The split is deterministic, so it runs once
  whatever the number of seeds. The validation item is neither in the history nor excluded
  at test time, for every model alike.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np

from ..data import Interactions, holdout_split, strong_generalization_split, temporal_split
from ..datasets import registry
from ..datasets.registry import DATASET_NAMES, SYNTHETIC_ML20M
from ..exceptions import DataError, DataWarning

logger = logging.getLogger(__name__)

PROTOCOLS = ("strong", "holdout", "temporal")
#: The first seed is the reference protocol's; more seeds count up from 1.
FIRST_SEED = 98765
#: Fewer validation users than this pick settings on noise: a search warns.
FEW_USERS = 20
#: Named datasets (see :mod:`recae.datasets.registry`); anything else is read as a log file's path.
DATASETS = DATASET_NAMES

__all__ = ["PROTOCOLS", "FIRST_SEED", "DATASETS", "SYNTHETIC_ML20M", "seed_list", "split_seeds", "positives",
           "load_dataset", "make_split"]


def seed_list(seeds) -> list[int]:
    """``3`` → [98765, 1, 2]; a list of ints is used as given."""
    if isinstance(seeds, (list, tuple)):
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise DataError(f"seeds must be a positive count or a non-empty list of integers; got {seeds!r}")
        return list(seeds)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise DataError(f"seeds must be a positive count or a non-empty list of integers; got {seeds!r}")
    return [FIRST_SEED, *range(1, seeds)]


def split_seeds(protocol: str, seeds: list) -> list:
    """The seeds that give distinct splits: all of them, but only the first for ``temporal``."""
    return list(seeds[:1]) if protocol == "temporal" else list(seeds)


def positives(data: Interactions, threshold: float | None = 3.5, min_user: int = 5, min_item: int = 1) -> Interactions:
    """Ratings above ``threshold`` as positives (when ``data`` has ratings), then the k-core filter."""
    if data.has_ratings and threshold is not None:
        data = data.binarize(threshold)
    return data.filter(min_user=min_user, min_item=min_item)


def load_dataset(name: str, data_dir=None, *, threshold: float = 3.5, min_user: int = 5,
                 show_progress: bool = False) -> Interactions:
    """Positives (rating > ``threshold``) of users with at least ``min_user`` of them.

    ``name`` is one of :data:`DATASETS` (the synthetic ones with seed 0; MovieLens is never
    downloaded here) or the path of a CSV/TSV/Parquet log with columns ``user``, ``item``
    and optionally ``rating`` and ``timestamp``. A synthetic log is generated at the shape of
    a log of positives, so every entry is one (value 1), as ``recae bench --binarize 0`` reads it.
    """
    data, _ = registry.load(name, data_dir=data_dir, download=False, show_progress=show_progress)
    if name in registry.SYNTHETIC_NAMES:
        return data.binarize(0.0)
    return positives(data, threshold, min_user)


def make_split(data: Interactions, protocol: str, seed: int, *, heldout: float | int = 0.1, test_size: float = 0.2,
               valid_size: float = 0.1, valid_k: int = 1):
    """The split of ``protocol`` for ``seed``, with the parts above as its defaults.

    ``heldout``: users per held-out part of ``strong``; ``test_size``/``valid_size``: each
    user's fractions for ``holdout``; ``valid_k``: validation items per user for ``temporal``
    (its test is each user's last item). ``valid_size=0``/``valid_k=0`` leave validation out.
    """
    if protocol == "strong":
        return strong_generalization_split(data, heldout, random_state=seed)
    if protocol == "holdout":
        return holdout_split(data, test_size=test_size, valid_size=valid_size, random_state=seed)
    if protocol == "temporal":
        return temporal_split(data, k=1, valid_k=valid_k)
    raise DataError(f"protocol must be one of {list(PROTOCOLS)}; got {protocol!r}")


def search_split(data: Interactions, protocol: str, seed: int):
    """:func:`make_split` with its defaults, for a search or the bench, which take no held-out fraction."""
    try:
        return make_split(data, protocol, seed)
    except DataError as exc:  # the splitter names n_heldout, which a search does not take
        need = re.search(r"gives 0 users.*at least (\d+) users", str(exc))
        if need is None:
            raise
        raise DataError(f"{data.n_users} users are too few for validation and test users of their own (a tenth "
                        f"each): use a log with at least {need.group(1)} users, or protocol='holdout', which holds "
                        "out items of every user") from None


def check_validation(split) -> None:
    """Refuse a split whose validation part holds no entry: a search on it would score nothing.

    Strong generalization holds out a fifth of each validation user's items, so users with
    fewer than 5 give none; a holdout split needs users with entries to spare.
    """
    target = split.valid_target if hasattr(split, "valid_target") else getattr(split, "valid", None)
    held = getattr(target, "matrix", target)
    users = 0 if target is None else int((np.diff(held.indptr) > 0).sum())
    zeros = 0 if target is None else int((held.data == 0).sum())
    if zeros:  # stored zeros are known non-interactions to the models searched: held out, they score nothing
        warnings.warn(f"{zeros:,} of the validation part's {held.nnz:,} held-out entries are stored zeros, which no "
                      "model of positives can hit: drop them before the search (data.binarize(0) keeps the "
                      "positive entries)", DataWarning, stacklevel=3)
    if 0 < users < FEW_USERS:
        warnings.warn(f"the validation part has {users} user(s) with held-out items: settings will be picked "
                      "on noise as much as on quality; use more users", DataWarning, stacklevel=3)
    if target is None or target.nnz == 0:
        counts = np.diff(split.train.matrix.indptr)
        raise DataError(f"the split's validation part holds no entries (its {len(counts):,} training users have a "
                        f"median of {np.median(counts) if len(counts) else 0:g} entries), so no setting can be scored; "
                        "keep users with more interactions (min_user / --min-user 5 or more) or use more data")
