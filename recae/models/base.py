"""The model contract every recae recommender follows.

scikit-learn conventions: ``__init__`` only stores keyword hyper-parameters, learned state
ends in ``_``, ``fit`` returns ``self``, ``get_params``/``set_params`` read the ``__init__``
signature. The recommend API follows implicit's shape: ``(ids, scores)`` numpy arrays, 1-D
for one user and 2-D for an array of users.

A model implements (see ``docs/architecture.md``):

- ``_fit(X, valid)``: learn from the CSR matrix ``X`` (``valid``: a (fold_in, target) pair or None);
- ``score_rows(X)``: scores ``(rows, items)`` for sparse history rows, the fold-in path;
- ``get_state()`` / ``set_state(tensors)``: the learned tensors a model file holds.

and may override ``score_users(rows)`` (scores of training users; default: fold in their
history) and ``similarity_rows(cols)`` (``similar_items``; default: decode a one-item
history). These protocol methods are public by convention: the Blend calls them on its
members, validation and anomaly scores on any model.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from ..anomaly import user_anomaly_scores
from ..data.batching import row_chunks
from ..data.ids import IdIndex
from ..data.interactions import Interactions
from ..data.sparse import entry_rows, take_rows
from ..data.validate import check_choice
from ..device import resolve_device
from ..exceptions import DataError, UnknownIdError
from . import explain as explaining, ranking
from .inputs import (check_flag, check_n, check_non_negative, history_matrix, is_scalar, training_matrix,
                     trained_items, validation_pair, without_zeros)
from .files import RecommenderFile
from .params import Params

logger = logging.getLogger(__name__)

__all__ = ["MODEL_REGISTRY", "Recommender"]

#: The recommenders, by class name: what ``recae fit --model``, the bench and the Blend can name.
#: A model joins it by being defined (``_abstract = True`` in a shared base's own body keeps it out).
MODEL_REGISTRY: dict[str, type] = {}


class Recommender(RecommenderFile, Params):
    """Base class of recae models. See the module docstring for the contract."""

    _abstract = True  # the base itself is no model a file can name
    model_kind = "recommender model"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_abstract", False):
            MODEL_REGISTRY[cls.__name__] = cls
    #: Whether training and history matrices may hold negative values (explicit-rating models).
    accepts_negative: bool = False
    #: Extra keyword arguments ``fit`` accepts (the trained models add checkpointing options).
    fit_options: tuple[str, ...] = ()
    #: Catalogues larger than this are ranked in item chunks from ``factored_rows``/``factored_users``
    #: (models whose scores are one output layer); None ranks dense score blocks at any size.
    item_chunk: int | None = None
    additive_scores: bool = False  #: scores linear in the history row: ``explain`` is exact for them
    #: ``recommend_new`` ranks an empty history by popularity (rating models have fallbacks of their own).
    empty_history_fallback: bool = True
    #: What ranks a history with no known item, as a server's response names it.
    empty_history_ranking: str = "popularity"

    # ------------------------------------------------------------------ fitting
    def fit(self, data, *, valid=None, **fit_kwargs) -> "Recommender":
        """Learn from a user×item log.

        Parameters
        ----------
        data : Interactions or scipy.sparse matrix of shape (n_users, n_items)
        valid : StrongSplit, HoldoutSplit or (fold_in, target) pair, optional
            Validation data for models that select epochs on it; items must match ``data``.

        Returns
        -------
        self
        """
        X, user_ids, item_ids = training_matrix(data)
        check_non_negative(X, "training data", type(self).__name__, self.accepts_negative)
        unsupported = sorted(set(fit_kwargs) - set(self.fit_options))
        if unsupported:
            raise DataError(f"{type(self).__name__}.fit does not take {unsupported}; it takes data, valid"
                            + "".join(f", {o}" for o in self.fit_options))
        self._forget()  # refitting starts from scratch
        try:
            self.adopt(X, user_ids, item_ids)
            # users a filter removed from the log, to tell "removed by filter(...)" from "unknown" later
            self.dropped_users_ = {step: users for step, users in
                                   ((r.step, list(r.users)) for r in getattr(data, "drops", ())) if users}
            self._fit(X if self.accepts_negative else without_zeros(X), valid=validation_pair(valid, self.item_ids_), **fit_kwargs)
        except BaseException:
            self._forget()  # a failed fit must not leave a half-fitted model behind
            raise
        return self

    def adopt(self, X: sp.csr_matrix, user_ids, item_ids, device=None) -> None:
        """Set the fitted state every model shares: device, ids and the training matrix.

        The one place it is built: ``fit``, loading and the Blend all call it.
        """
        self.device_ = device if device is not None else resolve_device(getattr(self, "device", "cpu"))
        self.user_ids_, self.item_ids_ = np.asarray(user_ids), np.asarray(item_ids)
        self.n_items_ = X.shape[1]
        self.user_items_ = X
        self._note_fitted_params()

    # ------------------------------------------------------------------ to implement
    def _fit(self, X: sp.csr_matrix, valid=None, **fit_kwargs) -> None:
        raise NotImplementedError

    def score_rows(self, X: sp.csr_matrix) -> torch.Tensor:
        """Scores ``(n_rows, n_items)`` on ``device_`` for history rows in the model's item index."""
        raise NotImplementedError

    def score_users(self, rows: np.ndarray) -> torch.Tensor:
        """Scores for training users (row positions); defaults to folding in their history."""
        return self.score_rows(take_rows(self.user_items_, rows))

    def factored_rows(self, X: sp.csr_matrix) -> ranking.FactoredScores:
        """``score_rows`` kept as ``layer(hidden)``; needed only by models that set ``item_chunk``."""
        raise NotImplementedError

    def factored_users(self, rows: np.ndarray) -> ranking.FactoredScores:
        """``score_users`` kept as ``layer(hidden)``; defaults to folding in their history."""
        return self.factored_rows(take_rows(self.user_items_, rows))

    def similarity_rows(self, cols: np.ndarray) -> torch.Tensor:
        """Similarity of the items ``cols`` to every item; default: fold in a one-item history."""
        onehot = sp.csr_matrix((np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
                               shape=(len(cols), self.n_items_))
        return self.score_rows(onehot)

    def get_state(self) -> dict[str, torch.Tensor]:
        """The learned tensors a model file holds."""
        raise NotImplementedError

    def set_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`get_state` returned (after :meth:`adopt`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ inputs
    def _ids(self, kind: str) -> IdIndex:
        """The (cached) lookup index of ``user_ids_`` or ``item_ids_``; built once per fit/load."""
        self._check_fitted()
        cache = self.__dict__.setdefault("_id_cache", {})
        ids = self.user_ids_ if kind == "user" else self.item_ids_
        if kind not in cache or cache[kind].ids is not ids:
            cache[kind] = IdIndex(ids, kind)
        return cache[kind]

    def item_counts(self) -> np.ndarray:
        """Training users per item, int64 of shape ``(n_items,)``: each column's entries (a model of positives: non-zero ones)."""
        self._check_fitted()
        return np.bincount(self.user_items_.indices[(self.user_items_.data != 0) | self.accepts_negative], minlength=self.n_items_)

    def user_rows(self, user_ids, *, unknown: str = "raise") -> np.ndarray:
        """Row positions ``(n,)`` of raw user ids in ``user_ids_`` (and ``user_items_``).

        ``unknown="raise"`` raises UnknownIdError naming the unknown ids (and the filter that
        removed any of them); ``"ignore"`` gives -1 for them.
        """
        try:
            return self._ids("user").lookup(user_ids, unknown=unknown)
        except UnknownIdError as exc:
            dropped = getattr(self, "dropped_users_", {})
            asked = set(np.atleast_1d(np.asarray(user_ids, dtype=object)).tolist()) if dropped else set()
            why = [f"{sorted(asked & set(users), key=str)[:5]} removed by {step}" for step, users in dropped.items()
                   if asked & set(users)]
            if not why:
                raise
            raise UnknownIdError(f"{exc}; of these, {'; '.join(why)} before fitting") from None

    def item_columns(self, item_ids, *, unknown: str = "raise") -> np.ndarray:
        """Column positions ``(n,)`` of raw item ids in ``item_ids_`` (-1 for unknown ones with ``"ignore"``)."""
        return self._ids("item").lookup(item_ids, unknown=unknown)

    def _item_mask(self, items, exclude) -> torch.Tensor | None:
        """Boolean ``(n_items,)`` mask of allowed candidates, or None when all are allowed."""
        if items is None and exclude is None:
            return None
        index = self._ids("item")
        mask = torch.ones(self.n_items_, dtype=torch.bool)
        # candidates have no order, so a set is as good as a list
        items, exclude = (list(x) if isinstance(x, (set, frozenset)) else x for x in (items, exclude))
        if items is not None:
            mask[:] = False
            mask[torch.as_tensor(index.lookup(items))] = True
        if exclude is not None:
            mask[torch.as_tensor(index.lookup(exclude))] = False
        return mask.to(self.device_)

    def history_rows(self, history, unknown: str = "raise") -> tuple[sp.csr_matrix, bool]:
        """History in any accepted form → (CSR rows in the model's item index, is_single_user)."""
        X, single = history_matrix(history, self._ids("item"), self.n_items_, unknown)
        check_non_negative(X, "history", type(self).__name__, self.accepts_negative)
        return X, single

    # ------------------------------------------------------------------ ranking
    explain = explaining.explain  # model.explain(user_or_history, item_ids, n=5): recae.models.explain

    def top_k(self, dense, seen, n_rows: int, n: int, mask=None, factored=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and scores (see :func:`recae.models.ranking.top_k`)."""
        return ranking.top_k(dense, seen, n_rows, n, mask, n_items=self.n_items_, owner=type(self).__name__,
                             factored=factored, item_chunk=self.item_chunk)

    def rank_rows(self, X: sp.csr_matrix, n: int, *, exclude_seen: bool = True, mask=None):
        """Top-``n`` item indices and scores for history rows (what validation ranks)."""
        return self.top_k(lambda a, b: self.score_rows(X[a:b]), X if exclude_seen else None, X.shape[0], n, mask,
                         factored=lambda a, b: self.factored_rows(X[a:b]))

    def recommend(self, user_ids, n: int = 10, *, exclude_seen: bool = True, items=None, exclude=None):
        """Top-``n`` items for training users (one whose training row is empty: the most popular, as
        :meth:`recommend_new` ranks an empty history).

        Parameters
        ----------
        user_ids : raw user id or array-like of shape (n_users,)
        n : int, default 10
            Capped at the number of candidate items.
        exclude_seen : bool, default True
            Leave out items the user interacted with in the training data.
        items : array-like of raw item ids, optional
            Rank only these candidates.
        exclude : array-like of raw item ids, optional
            Never recommend these.

        Returns
        -------
        ids : ndarray of shape (n,) for one user or (n_users, n)
            Raw item ids, best first. In the 2-D form, a user with fewer than ``n``
            candidates left is padded with id ``-1`` (``None`` for string ids) and score ``-inf``;
            where ``-1`` is also a real item id, the ``-inf`` score tells the padding apart.
        scores : ndarray of float32, same shape, non-increasing along each row. On a CPU a
            small batch is scored with a sparse product and a large one with a dense one, so a
            user's scores can differ in the last float32 bits between a call for them alone and
            one for many users, and two items whose scores are that close can swap places.
        """
        self._check_fitted()
        n, exclude_seen = check_n(n), check_flag(exclude_seen, "exclude_seen")
        single = is_scalar(user_ids, "user ids")
        rows = self.user_rows(user_ids)
        X = take_rows(self.user_items_, rows)
        mask = self._item_mask(items, exclude)
        ids, scores = self.top_k(lambda a, b: self.score_users(rows[a:b]), X if exclude_seen else None, len(rows), n,
                                mask, factored=lambda a, b: self.factored_users(rows[a:b]))
        # a training user whose row is empty has nothing personal to rank by: as recommend_new does
        self._popular(ids, scores, X, n, mask, exclude_seen)
        return ranking.to_raw(self.item_ids_, ids, scores, single)

    def recommend_new(self, history, n: int = 10, *, exclude_seen: bool = True, items=None, exclude=None,
                      unknown: str = "raise"):
        """Top-``n`` items for users not seen in training, from their history; no retraining.

        Parameters
        ----------
        history : list of raw item ids, dict item→value, Interactions, or sparse matrix
            One new user (list or dict: 1-D results) or several (Interactions, or a sparse
            matrix of shape (n_new_users, n_items) in the model's item index: 2-D results).
        n, exclude_seen, items, exclude
            As in :meth:`recommend`; ``exclude_seen`` leaves out the history's own items.
        unknown : {"raise", "ignore"}, default "raise"
            What to do with history items the model has never seen: an UnknownIdError naming
            them, or leave them out with a :class:`~recae.exceptions.DataWarning` naming them.
            A history with no (known) items, only zero values, or only items no training user had gets
            the most popular training items, scored by how many training users have each (a rating model: the item means; its
            history's ratings must lie on the scale it was fitted on).

        Returns
        -------
        ids, scores : as in :meth:`recommend`.
        """
        self._check_fitted()
        n, exclude_seen = check_n(n), check_flag(exclude_seen, "exclude_seen")
        check_choice(unknown, "unknown", ("raise", "ignore"))
        X, single = self.history_rows(history, unknown)
        mask = self._item_mask(items, exclude)
        ids, scores = self.rank_rows(X, n, exclude_seen=exclude_seen, mask=mask)
        self._popular(ids, scores, X, n, mask, exclude_seen)
        return ranking.to_raw(self.item_ids_, ids, scores, single)

    def _popular(self, ids, scores, X: sp.csr_matrix, n: int, mask, exclude_seen: bool) -> None:
        """Rank the rows of ``X`` with nothing to fold in by training popularity, in place."""
        empty = self.unfolded_rows(X) if self.empty_history_fallback else []
        if len(empty):
            counts = torch.as_tensor(self.item_counts(), dtype=torch.float32, device=self.device_)
            # a copy per row: top_k writes -inf over each row's own seen items, and rows of one
            # expanded view share storage, so one user's exclusions would reach the others
            ids[empty], scores[empty] = self.top_k(lambda a, b: counts.expand(b - a, -1).clone(),
                                                   X[empty] if exclude_seen else None, len(empty), n, mask)

    def unfolded_rows(self, X: sp.csr_matrix) -> np.ndarray:
        """Rows of history matrix ``X`` with nothing to fold in, whose ranking is not personal: no entry, or
        (for a model of positives) only zeros and items no training user had, of which it learned nothing."""
        held = (X.data != 0) & trained_items(self)[X.indices] if self.empty_history_fallback else np.ones(X.nnz, bool)
        return np.flatnonzero(np.bincount(entry_rows(X.indptr)[held], minlength=X.shape[0]) == 0)

    def score(self, history, *, unknown: str = "raise") -> np.ndarray:
        """Raw scores for history rows.

        Parameters
        ----------
        history : Interactions or scipy.sparse matrix of shape (n_rows, n_items)
            Columns follow the model's item index (an Interactions is aligned by raw id).
        unknown : {"raise", "ignore"}, default "raise"
            Items of an Interactions the model has never seen: an UnknownIdError, or left out.

        Returns
        -------
        ndarray of float32, shape (n_rows, n_items)
        """
        self._check_fitted()
        if not (isinstance(history, Interactions) or sp.issparse(history)):
            raise DataError(f"score expects an Interactions or a sparse matrix of shape (n_rows, {self.n_items_}); "
                            f"got {type(history).__name__} (use recommend_new for a list of item ids)")
        check_choice(unknown, "unknown", ("raise", "ignore"))
        X, _ = self.history_rows(history, unknown)
        out = np.empty(X.shape, dtype=np.float32)
        for start, stop in row_chunks(X.shape[0], self.n_items_):
            with torch.no_grad():
                s = self.score_rows(X[start:stop]).float()
            ranking.check_scores(s, type(self).__name__, start)
            out[start:stop] = s.cpu().numpy()
        return out

    def anomaly_score(self, history, method: str = "nll"):
        """Per-user reconstruction-error score: high means the model explains the history badly.

        See :func:`recae.anomaly.user_anomaly_scores` for the definition, the methods and
        the limits (score accounts with a model fitted on other users where possible).

        Returns
        -------
        ndarray of float64, shape (n_users,)
        """
        return user_anomaly_scores(self, history, method)

    def similar_items(self, item_ids, n: int = 10):
        """Items most similar to the given ones.

        By default, the items the model would recommend to someone whose history is that one
        item (an autoencoder's decoding of a one-hot row); factor models use the cosine of
        their item factors.

        Parameters
        ----------
        item_ids : raw item id or array-like of shape (n_queries,)
        n : int, default 10

        Returns
        -------
        ids, scores : ndarrays of shape (n,) or (n_queries, n), the query item itself left out.
        """
        self._check_fitted()
        n = check_n(n)
        single = is_scalar(item_ids, "item ids")
        cols = self._ids("item").lookup(item_ids)
        X = sp.csr_matrix((np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
                          shape=(len(cols), self.n_items_))
        ids, scores = self.top_k(lambda a, b: self.similarity_rows(cols[a:b]), X, len(cols), n)
        return ranking.to_raw(self.item_ids_, ids, scores, single)
