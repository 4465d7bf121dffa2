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

from ..data import Interactions, holdout_split, strong_generalization_split, temporal_split
from ..exceptions import DataError

logger = logging.getLogger(__name__)

PROTOCOLS = ("strong", "holdout", "temporal")
#: The first seed is the reference protocol's; more seeds count up from 1.
FIRST_SEED = 98765
#: Named datasets; anything else is read as a CSV/Parquet log path.
DATASETS = ("ml-100k", "ml-1m", "ml-20m", "synthetic-ml20m", "synthetic")
SYNTHETIC_ML20M = {"n_users": 136_677, "n_items": 20_108, "n_interactions": 10_000_000}


def seed_list(seeds) -> list[int]:
    """``3`` → [98765, 1, 2]; a list of ints is used as given."""
    if isinstance(seeds, (list, tuple)):
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise DataError(f"seeds must be a positive count or a non-empty list of integers; got {seeds!r}")
        return list(seeds)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise DataError(f"seeds must be a positive count or a non-empty list of integers; got {seeds!r}")
    return [FIRST_SEED, *range(1, seeds)]


def load_dataset(name: str, data_dir=None, *, threshold: float = 3.5, min_user: int = 5,
                 show_progress: bool = False) -> Interactions:
    """Positives (rating > ``threshold``) of users with at least ``min_user`` of them.

    ``name`` is one of :data:`DATASETS` or the path of a CSV/Parquet log with columns
    ``user``, ``item`` and optionally ``rating`` and ``timestamp``.
    """
    from ..datasets import load_csv, load_movielens, load_parquet, synthetic

    if name.startswith("ml-"):
        data = load_movielens(name[3:], data_dir=data_dir, download=False, show_progress=show_progress)
    elif name == "synthetic-ml20m":
        return synthetic(**SYNTHETIC_ML20M, random_state=0)
    elif name == "synthetic":
        return synthetic(n_users=2000, n_items=500, random_state=0)
    elif name.endswith((".parquet", ".pq")):
        data = load_parquet(name)
    elif name.endswith((".csv", ".tsv", ".txt", ".dat")):
        data = load_csv(name)
    else:
        raise DataError(f"dataset must be one of {list(DATASETS)} or a .csv/.parquet log; got {name!r}")
    if data.has_ratings:
        data = data.binarize(threshold)
    return data.filter(min_user=min_user)


def make_split(data: Interactions, protocol: str, seed: int):
    if protocol == "strong":
        return strong_generalization_split(data, 0.1, random_state=seed)
    if protocol == "holdout":
        return holdout_split(data, test_size=0.2, valid_size=0.1, random_state=seed)
    if protocol == "temporal":
        return temporal_split(data, k=1, valid_k=1)
    raise DataError(f"protocol must be one of {list(PROTOCOLS)}; got {protocol!r}")
