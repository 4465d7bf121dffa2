"""What every explicit-rating model shares: rating checks, masked loss, prediction, fallbacks.

Explicit models (:class:`~recae.models.autorec.AutoRec`, :class:`~recae.models.biased_mf.BiasedMF`)
learn from star ratings with a squared error computed on **observed entries only** (the
masked reconstruction loss of Sedhain et al., "AutoRec: Autoencoders Meet Collaborative
Filtering", WWW 2015, and the usual matrix-factorization objective): an
unobserved cell is neither a zero rating nor a negative, and it adds nothing to the loss or
to any gradient. "Observed" means *stored in the sparse matrix*: the training loop gathers a
0/1 mask from the CSR structure next to the values, so a stored rating of 0 on a 0–10
scale still counts as observed.

Prediction for a (user, item) pair uses the model when both were seen with at least one
training rating, and otherwise falls back (documented on :meth:`ExplicitRecommender.predict`):
user known, item not → the user's mean training rating; item known, user not → the item's
mean; neither → the global mean. Predictions are clipped to the rating range (declared with
``rating_range=(low, high)``, else the observed range of the training ratings).

Ranking (``recommend``, ``recommend_new``, ``score``) orders items by **unclipped**
predicted rating: clipping would tie every item predicted above the top of the scale.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.sparse as sp
import torch

from ..data.interactions import Interactions
from ..exceptions import DataError, ShapeError, TrainingError
from ..train import TrainSpec
from .base import Recommender
from .inputs import is_scalar
from .ranking import cosine_rows
from .ratings import RatingRows, check_ratings, row_stats
from .trained import OPTIMIZERS, Trained

logger = logging.getLogger(__name__)

VALID_METRICS = ("rmse", "mae")

#: Pairs predicted per chunk (each holds a ``(chunk, dim)`` gather of codes and weights).
_PAIR_CHUNK = 1 << 14

#: ``optimizer="lbfgs"``: at most this many L-BFGS iterations per epoch (and torch's default of
#: 1.25× as many objective evaluations, which the line search shares), and the curvature pairs kept.
LBFGS_ITERATIONS = 10
LBFGS_HISTORY = 20


class ExplicitRecommender(Trained, Recommender):
    """Base class of explicit-rating models trained with a masked squared error.

    Scores are predicted ratings, computed densely per block of rows (no lazy item-chunked
    ranking). A subclass provides ``_build``, ``_loss(ctx, (values, mask), rows)``,
    ``_training_rows(X)`` (the matrix whose rows are the training vectors),
    ``_refresh()`` (caches derived from the weights, after training or loading), ``_pair_scores(u, i)``
    (raw predictions for index pairs of trained users and items), ``_user_scores(rows)``
    (all items for training users), ``_fold_in_scores(X)`` (all items for new rating rows)
    and ``_item_vectors()`` (item representations for ``similar_items``).
    """

    _abstract = True  # a shared base, not a model a file can name
    accepts_negative = True  # ratings may use any scale, negative included
    empty_history_fallback = False  # a row without ratings gets the item means (see predict)
    empty_history_ranking = "item means"
    #: First-order optimizers plus full-batch L-BFGS (the AutoRec paper's optimizer).
    optimizers = {**OPTIMIZERS, "lbfgs": torch.optim.LBFGS}
    # data-parallel: every rank holds the whole matrix and gathers its slice of each global batch
    no_local_rows = "its training vectors need the whole log"

    # ------------------------------------------------------------------ checks
    def _check_settings(self) -> None:
        if self.valid_metric not in VALID_METRICS:
            raise DataError(f"valid_metric must be one of {VALID_METRICS}; got {self.valid_metric!r}")
        self._check_training_settings()
        if self.optimizer == "lbfgs" and self.amp is True:
            raise DataError("optimizer='lbfgs' runs in float32; set amp=False")
        if not (isinstance(self.l2, (int, float, np.integer, np.floating)) and self.l2 >= 0):
            raise DataError(f"l2 must be a number >= 0; got {self.l2!r}")
        self._declared_range()

    def _declared_range(self):
        r = self.rating_range
        if r is None:
            return None
        try:
            low, high = (float(v) for v in r)
        except (TypeError, ValueError):
            raise DataError(f"rating_range must be None or a (low, high) pair of numbers; got {r!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise DataError(f"rating_range must be finite with low < high; got {r!r}")
        return low, high

    def fit(self, data, *, valid=None, **fit_kwargs):
        """Learn from a user×item log of explicit ratings.

        Parameters
        ----------
        data : Interactions with ratings, or scipy.sparse matrix of shape (n_users, n_items)
            Stored entries are the observed ratings. An Interactions built without a rating
            column (``has_ratings=False``, e.g. after ``binarize``) is refused.
        valid : HoldoutSplit or (fold_in, target) pair, optional
            Ratings to early-stop on (``valid_metric``, RMSE by default). A HoldoutSplit's
            ``valid`` part, or a pair whose matrices have one row per training user, is
            predicted for the training users; a pair with other rows is read as new users
            whose ``fold_in`` ratings are folded in.
        checkpoint_dir, resume, callbacks
            As for the other neural models.

        Returns
        -------
        self
        """
        if isinstance(data, Interactions) and not data.has_ratings:
            raise DataError(f"{type(self).__name__} trains on explicit ratings, but this Interactions has no rating "
                            "column (has_ratings=False, e.g. built without rating= or binarized); build it with "
                            "Interactions.from_pandas(df, user=..., item=..., rating='<rating column>')")
        self._check_settings()
        return super().fit(data, valid=valid, **fit_kwargs)

    # ------------------------------------------------------------------ training
    def _prepare(self, X) -> None:
        check_ratings(X, self._declared_range())
        self.n_users_ = X.shape[0]
        self.user_count_, self.user_mean_ = row_stats(X)
        self.item_count_, self.item_mean_ = row_stats(X.T.tocsr())
        self.global_mean_ = float(X.data.mean())
        declared = self._declared_range()
        self.rating_range_ = declared or (float(X.data.min()), float(X.data.max()))

    def _training_rows(self, X: sp.csr_matrix) -> sp.csr_matrix:
        return X

    def _fit(self, X, valid=None, **fit_kwargs):
        self._check_settings()
        self._prepare(X)
        rows = self._training_rows(X)
        self.n_observed_ = int(rows.nnz)

        def spec(trainer) -> TrainSpec:
            if self.optimizer == "lbfgs" and trainer.is_distributed:
                raise TrainingError(f"{type(self).__name__}(optimizer='lbfgs') trains in one process (full-batch "
                                    "line searches are not data-parallel here); use a first-order optimizer under "
                                    "torchrun")
            return self._spec(
                RatingRows(rows, self.device_),
                self._fingerprint(np.asarray(X.shape, np.int64), X.indptr.astype(np.int64), X.indices.astype(np.int64),
                                  X.data.astype(np.float32), valid=valid),
                (lambda: self._validation_error(valid)) if valid is not None else None,
                higher_is_better=False, batch_weight=self._batch_weight, full_batch=self.optimizer == "lbfgs")

        self._train(X.shape[1], spec, **fit_kwargs)
        self._refresh()

    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        # any L2 term is the model's (_loss, _penalty or _optimizers groups), never the optimizer's default
        if self.optimizer == "lbfgs":
            # lr is the first trial step of the strong-Wolfe line search (1.0 is the usual choice)
            return torch.optim.LBFGS(params, lr=self.lr, max_iter=LBFGS_ITERATIONS, history_size=LBFGS_HISTORY,
                                     line_search_fn="strong_wolfe")
        return OPTIMIZERS[self.optimizer](params, lr=self.lr, foreach=True)

    def _batch_weight(self, state, rows) -> float:
        """What a batch loss is a mean over (rows here; ratings for BiasedMF)."""
        return float(len(rows))

    def _validation_error(self, valid, metric: str | None = None) -> float:
        """RMSE or MAE (``valid_metric`` by default) of the module as it stands on the validation ratings."""
        metric = metric or self.valid_metric
        fold_in, target = valid
        if target.nnz == 0:
            raise DataError("the validation target holds no ratings")
        self._refresh()
        coo = target.tocoo()
        if fold_in.shape[0] == self.n_users_:
            pred = self._predict_index(coo.row.astype(np.int64), coo.col.astype(np.int64))
        else:  # new users: fold their ratings in
            users, where = np.unique(coo.row, return_inverse=True)
            pred = self._clip(self.score(fold_in[users]))[where, coo.col]
        err = pred.astype(np.float64) - coo.data
        return float(np.sqrt(np.mean(err ** 2)) if metric == "rmse" else np.mean(np.abs(err)))

    # ------------------------------------------------------------------ prediction
    def _clip(self, values):
        low, high = self.rating_range_
        return np.clip(values, low, high)

    def _fallback(self, user_mean: np.ndarray | None, n_rows: int) -> torch.Tensor:
        """Fallback scores ``(n_rows, n_items)``: each row's mean, else each item's mean, else global."""
        item = torch.as_tensor(np.where(self.item_count_ > 0, self.item_mean_, self.global_mean_), dtype=torch.float32,
                               device=self.device_)
        out = item.expand(n_rows, -1).clone()
        if user_mean is not None:
            has = np.flatnonzero(np.isfinite(user_mean))
            if len(has):
                mean = torch.as_tensor(user_mean[has], dtype=torch.float32, device=self.device_)
                out[torch.as_tensor(has, device=self.device_)] = mean.unsqueeze(1).expand(-1, self.n_items_)
        return out

    def _with_fallback(self, scores: torch.Tensor, row_count: np.ndarray, row_mean: np.ndarray) -> torch.Tensor:
        """Replace what the model cannot know: rows without ratings, items without training ratings."""
        no_row = row_count == 0
        no_item = self.item_count_ == 0
        if not no_row.any() and not no_item.any():
            return scores
        # a row without ratings gets item means; an item without ratings gets the row's mean
        fallback = self._fallback(np.where(no_row, np.nan, row_mean), scores.shape[0])
        scores = scores.clone()
        if no_item.any():
            cols = torch.as_tensor(np.flatnonzero(no_item), device=scores.device)
            scores[:, cols] = fallback[:, cols]
        if no_row.any():
            r = torch.as_tensor(np.flatnonzero(no_row), device=scores.device)
            scores[r] = fallback[r]
        return scores

    @torch.no_grad()
    def score_users(self, rows):
        self.module_.eval()
        rows = np.asarray(rows, dtype=np.int64)
        return self._with_fallback(self._user_scores(rows).float(), self.user_count_[rows], self.user_mean_[rows])

    @torch.no_grad()
    def score_rows(self, X):
        self.module_.eval()
        counts, means = row_stats(X)
        return self._with_fallback(self._fold_in_scores(X).float(), counts, means)

    @torch.no_grad()
    def similarity_rows(self, cols):
        # a one-item history would read as "rated 1 star"; compare item representations instead
        v = self._item_vectors().float()
        v = v - v.mean(dim=0)  # sigmoid codes are all positive; centring lets cosines tell items apart
        return cosine_rows(v, cols)

    @torch.no_grad()
    def _predict_index(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Clipped predictions for user/item positions (``-1``: unknown), float32 of shape (n,)."""
        self.module_.eval()
        ok_u = np.zeros(len(users), bool)
        ok_i = np.zeros(len(items), bool)
        ok_u[users >= 0] = self.user_count_[users[users >= 0]] > 0
        ok_i[items >= 0] = self.item_count_[items[items >= 0]] > 0
        out = np.full(len(users), self.global_mean_, dtype=np.float64)
        only_u, only_i, both = ok_u & ~ok_i, ok_i & ~ok_u, ok_u & ok_i
        out[only_u] = self.user_mean_[users[only_u]]
        out[only_i] = self.item_mean_[items[only_i]]
        idx = np.flatnonzero(both)
        for start in range(0, len(idx), _PAIR_CHUNK):
            part = idx[start:start + _PAIR_CHUNK]
            u = torch.as_tensor(users[part], device=self.device_)
            i = torch.as_tensor(items[part], device=self.device_)
            out[part] = self._pair_scores(u, i).float().cpu().numpy()
        return self._clip(out).astype(np.float32)

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Predicted ratings for (user, item) pairs of raw ids, clipped to ``rating_range_``.

        Pairs the model cannot predict fall back, never raise: a user without training
        ratings (or unknown) with a known item → the item's mean training rating; a known
        user with an item without training ratings (or unknown) → the user's mean; neither
        known → the global mean.

        Parameters
        ----------
        user_ids, item_ids : raw id or array-like of shape (n,)
            Paired element-wise; a single id is repeated to the other's length.

        Returns
        -------
        float for one pair, else ndarray of float32 of shape (n,)
        """
        self._check_fitted()
        single = is_scalar(user_ids, "user ids") and is_scalar(item_ids, "item ids")
        users = self._ids("user").lookup(user_ids, unknown="ignore")
        items = self._ids("item").lookup(item_ids, unknown="ignore")
        if len(users) != len(items):  # a single id (not a list of one) is repeated, as documented
            if is_scalar(user_ids, "user ids"):
                users = np.repeat(users, len(items))
            elif is_scalar(item_ids, "item ids"):
                items = np.repeat(items, len(users))
            else:
                raise ShapeError(f"user_ids and item_ids are paired element-wise and must have the same length "
                                 f"(or one of them a single id); got {len(users)} and {len(items)}")
        pred = self._predict_index(users, items)
        return float(pred[0]) if single else pred

    # ------------------------------------------------------------------ histories
    def history_rows(self, history, unknown: str = "raise"):
        if isinstance(history, (list, tuple, set)) and not len(history):
            history = {}  # an empty history holds no ratings to mistake for ids
        if isinstance(history, (list, tuple, np.ndarray, set)) or np.isscalar(history):
            raise DataError(f"{type(self).__name__} folds in ratings, not bare item ids; pass a dict item→rating "
                            f"(or an Interactions/sparse matrix of ratings); got a {type(history).__name__}")
        X, single = super().history_rows(history, unknown)
        # the scale it was fitted on (declared, or seen in training): a 9 on a 1-5 scale is no rating it knows
        check_ratings(X, self._declared_range() or getattr(self, "rating_range_", None),
                      what="history (on the scale of the training ratings)")
        return X, single

    # ------------------------------------------------------------------ persistence
    def _extra_state(self) -> dict[str, torch.Tensor]:
        f64 = torch.float64
        return {"extra.user_count": torch.as_tensor(self.user_count_), "extra.user_mean": torch.as_tensor(self.user_mean_, dtype=f64),
                "extra.item_count": torch.as_tensor(self.item_count_), "extra.item_mean": torch.as_tensor(self.item_mean_, dtype=f64),
                "extra.stats": torch.tensor([self.global_mean_, *self.rating_range_, self.n_observed_], dtype=f64)}

    def _prepare_from_state(self, tensors) -> None:
        self.user_count_ = tensors["extra.user_count"].cpu().numpy()
        self.user_mean_ = tensors["extra.user_mean"].cpu().numpy()
        self.item_count_ = tensors["extra.item_count"].cpu().numpy()
        self.item_mean_ = tensors["extra.item_mean"].cpu().numpy()
        g, low, high, n_obs = tensors["extra.stats"].cpu().tolist()
        self.global_mean_, self.rating_range_, self.n_observed_ = g, (low, high), int(n_obs)
        self.n_users_ = len(self.user_count_)
