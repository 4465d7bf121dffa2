"""ML-100K's official train/test splits (``u1``..``u5``, ``ua``, ``ub``)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ...data.interactions import Interactions
from ...data.sparse import build_csr
from ...exceptions import DataError
from .ratings import check_count, check_values, ratings_to_interactions, read_ratings
from .source import VARIANTS, locate

logger = logging.getLogger(__name__)

SPLIT_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def _fold_name(fold) -> str:
    if isinstance(fold, (int, np.integer)) and not isinstance(fold, bool):
        name = f"u{int(fold)}"
    else:
        name = str(fold).strip().lower()
        if name in ("a", "b"):
            name = "u" + name
    if name not in SPLIT_FOLDS:
        raise DataError(f"unknown ML-100K split {fold!r}; choose 1..5, 'u1'..'u5', 'ua' or 'ub'")
    return name


def _on_index(df: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> Interactions:
    """Interactions of ``df`` (ids all present in the given id arrays) on that exact index."""
    inter = ratings_to_interactions(df)  # resolves duplicate rows the usual way
    rows = pd.Index(user_ids).get_indexer(inter.user_ids)
    cols = pd.Index(item_ids).get_indexer(inter.item_ids)
    if (rows < 0).any() or (cols < 0).any():  # pragma: no cover - callers filter first
        raise DataError("internal error: ids missing from the target index")
    coo = inter.matrix.tocoo()
    # tocoo keeps CSR entry order, so timestamps line up with coo entries before reordering
    m, order = build_csr(rows[coo.row], cols[coo.col], coo.data, (len(user_ids), len(item_ids)))
    return Interactions(m, user_ids, item_ids, inter.timestamps[order], has_ratings=True)


def movielens_official_split(fold, data_dir=None, download: bool = True, unseen: str = "drop") -> tuple[Interactions, Interactions]:
    """One of ML-100K's official train/test splits (``u1``..``u5``, ``ua``, ``ub``).

    Parameters
    ----------
    fold : int or str
        ``1``..``5`` (or ``"u1"``..``"u5"``): the 5-fold 80/20 splits; ``"ua"``/``"ub"``
        (or ``"a"``/``"b"``): exactly 10 ratings per user held out.
    data_dir : str or os.PathLike, optional
        Data directory holding ``ml-100k/`` (see :func:`~recae.datasets.load_movielens`).
    download : bool, default True
        Download ML-100K when absent.
    unseen : {"drop", "keep"}, default "drop"
        ``"drop"``: both logs use train's users and items (the index a model fitted on
        train knows); test ratings of users or items absent from train are dropped and
        their number logged (u1.test has 20,000 rows, of which a few dozen are of items
        that u1.base lacks). ``"keep"``: both logs use the union of users and items of the
        two files, so no test rating is lost (train may then have empty item columns).

    Returns
    -------
    train, test : Interactions
        Explicit ratings with timestamps, both of shape (n_users, n_items) with identical
        ``user_ids`` and ``item_ids``.
    """
    name = _fold_name(fold)
    if unseen not in ("drop", "keep"):
        raise DataError(f"unseen must be 'drop' or 'keep'; got {unseen!r}")
    v = VARIANTS["100k"]
    base_file, test_file = f"{name}.base", f"{name}.test"
    folder = locate(v, [base_file, test_file], data_dir, download)
    base = read_ratings(folder / base_file, "tab")
    test = read_ratings(folder / test_file, "tab")
    n_test = 9_430 if name in ("ua", "ub") else 20_000  # the README's counts
    for path, frame, expected in ((folder / base_file, base, 100_000 - n_test), (folder / test_file, test, n_test)):
        check_count(frame, expected, path)
        check_values(frame, True, path)
    if unseen == "drop":
        train = ratings_to_interactions(base)
        known = test["user"].isin(train.user_ids).to_numpy() & test["item"].isin(train.item_ids).to_numpy()
        n_drop = int((~known).sum())
        if n_drop:
            logger.info("%s: dropped %d of %d test ratings whose user or item is absent from %s",
                        test_file, n_drop, len(test), base_file)
        test_i = _on_index(test[known], train.user_ids, train.item_ids)
        return train, test_i
    users = np.unique(np.concatenate([base["user"].to_numpy(), test["user"].to_numpy()]))
    items = np.unique(np.concatenate([base["item"].to_numpy(), test["item"].to_numpy()]))
    return _on_index(base, users, items), _on_index(test, users, items)
