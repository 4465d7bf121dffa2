"""The model contract every recae recommender follows.

scikit-learn conventions: ``__init__`` only stores keyword hyper-parameters, learned state
ends in ``_``, ``fit`` returns ``self``, ``get_params``/``set_params`` read the ``__init__``
signature. The recommend API follows implicit's shape: ``(ids, scores)`` numpy arrays, 1-D
for one user and 2-D for an array of users.

A subclass implements ``_fit(X, valid)``, ``_score_rows(X)`` (scores for sparse history
rows, the fold-in path every model has) and ``_get_state``/``_set_state`` (tensors to save).
"""

from __future__ import annotations

import copy
import inspect
import logging
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ..data.batching import csr_coords, row_chunks
from ..data.ids import IdIndex
from ..data.interactions import Interactions
from ..data.sparse import take_rows
from ..data.validate import as_array, check_choice
from ..exceptions import ConversionWarning, DataError, ModelFileError, NotFittedError, ShapeError, TrainingError

logger = logging.getLogger(__name__)

#: Models that ``recae.load`` may instantiate, by class name (never by import path).
MODEL_REGISTRY: dict[str, type] = {}


def _as_csr(X, what: str) -> sp.csr_matrix:
    if not sp.issparse(X):
        raise DataError(
            f"{what} must be an Interactions or a scipy.sparse user×item matrix; got {type(X).__name__}"
            + (" (wrap a dense array with scipy.sparse.csr_matrix)" if isinstance(X, np.ndarray) else "")
        )
    if X.ndim != 2:
        raise ShapeError(f"{what} must be a 2-D user×item matrix; got shape {X.shape}")
    if X.format != "csr":
        warnings.warn(f"{what} is a {X.format.upper()} matrix; converting to CSR (pass a CSR matrix to avoid "
                      "the copy)", ConversionWarning, stacklevel=3)
    try:
        X = sp.csr_matrix(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must hold numbers; got dtype {X.dtype} ({exc})") from None
    if not np.all(np.isfinite(X.data)):
        raise DataError(f"{what} has {int((~np.isfinite(X.data)).sum())} NaN or infinite value(s)")
    if not X.has_canonical_format:
        X = X.copy()  # csr_matrix shares the caller's arrays; sum_duplicates would sort them in place
        X.sum_duplicates()
    return X


def _check_non_negative(X: sp.csr_matrix, what: str, model) -> None:
    """Refuse negative entries, which the implicit-feedback losses and normalisations cannot take."""
    # rating-prediction models (those with ``predict``) take any finite rating scale, e.g. -10..10
    if getattr(model, "_accepts_negative", False) or callable(getattr(model, "predict", None)) or not X.nnz:
        return
    low = float(X.data.min())
    if low < 0:
        raise DataError(
            f"{what} has {int((X.data < 0).sum())} negative value(s) (min {low:g}); {type(model).__name__} "
            "expects counts, ones or ratings >= 0. Binarize the log (data.binarize(threshold)) or shift the "
            "ratings so the lowest is 0"
        )


def _is_scalar(ids, what: str) -> bool:
    """Whether ``ids`` is one id (1-D results) rather than a sequence of them (2-D results)."""
    if isinstance(ids, (str, bytes)):
        return True
    return as_array(ids, what, dtype=object).ndim == 0


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise DataError(f"n must be a positive integer; got {n!r}")
    return int(n)


def _check_scores(s: torch.Tensor, model, start: int) -> None:
    """Scores must be finite or -inf (a mask): a NaN or +inf would rank garbage as if it were real."""
    bad = torch.isnan(s) | torch.isposinf(s)
    if bool(bad.any()):
        row = int(bad.any(dim=1).nonzero()[0, 0]) + start
        raise TrainingError(
            f"{type(model).__name__} produced {int(bad.sum())} NaN or +inf score(s) (first in row {row}); "
            "expected finite scores. Its weights have diverged or the input is degenerate: refit (e.g. with a "
            "lower lr) and report the input that triggers it"
        )


class Recommender:
    """Base class of recae models. See the module docstring for the contract."""

    #: Whether training and history matrices may hold negative values (explicit-rating models).
    _accepts_negative: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # shared bases (``_abstract = True`` in their own body) are not models a file can name
        if not cls.__dict__.get("_abstract", False):
            MODEL_REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self, deep: bool = True) -> dict:
        """Hyper-parameters as a dict (the ``__init__`` keyword arguments)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Recommender":
        """Set hyper-parameters; unknown names are rejected with the list of valid ones."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise DataError(f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: {valid}")
            setattr(self, name, value)
        return self

    def _export_params(self) -> dict:
        """Hyper-parameters as JSON-ready values, for model files (nested models become specs)."""
        return self.get_params()

    def clone(self) -> "Recommender":
        """An unfitted copy with the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ fitting
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "item_ids_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(data) (or recae.load) first")

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
        if isinstance(data, Interactions):
            X, user_ids, item_ids = data.matrix, data.user_ids, data.item_ids
        else:
            X = _as_csr(data, "training data")
            user_ids, item_ids = np.arange(X.shape[0]), np.arange(X.shape[1])
        if X.nnz == 0 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataError(f"training data is empty: shape {X.shape}, {X.nnz} entries; expected at least one "
                            "user-item interaction")
        _check_non_negative(X, "training data", self)
        unsupported = sorted(set(fit_kwargs) - set(self._fit_options))
        if unsupported:
            raise DataError(f"{type(self).__name__}.fit does not take {unsupported}; it takes data, valid"
                            + "".join(f", {o}" for o in self._fit_options))
        self._forget()  # refitting starts from scratch
        try:
            self.device_ = self._resolve_device()
            self.user_ids_, self.item_ids_ = np.asarray(user_ids), np.asarray(item_ids)
            self.n_items_ = X.shape[1]
            self.user_items_ = X
            self._fit(X, valid=self._coerce_valid(valid), **fit_kwargs)
        except BaseException:
            self._forget()  # a failed fit must not leave a half-fitted model behind
            raise
        return self

    #: Extra keyword arguments ``fit`` accepts (the neural models add checkpointing options).
    _fit_options: tuple[str, ...] = ()

    def _forget(self) -> None:
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        self.__dict__.pop("_id_cache", None)

    def _resolve_device(self) -> torch.device:
        from ..device import resolve_device

        return resolve_device(getattr(self, "device", "cpu"))

    def _coerce_valid(self, valid):
        """Validation data as a (fold_in, target) pair of CSR matrices in the model's item index."""
        if valid is None:
            return None
        if hasattr(valid, "valid_fold_in"):
            pair = (valid.valid_fold_in, valid.valid_target)
        elif hasattr(valid, "valid") and hasattr(valid, "train"):
            if valid.valid is None:
                raise DataError("the HoldoutSplit has no validation part; split with valid_size > 0")
            pair = (valid.train, valid.valid)
        elif isinstance(valid, tuple) and len(valid) == 2:
            pair = valid
        else:
            raise DataError(f"valid must be a StrongSplit, HoldoutSplit or (fold_in, target) pair; got {type(valid).__name__}")
        out = []
        for part in pair:
            n = part.n_items if isinstance(part, Interactions) else getattr(part, "shape", (0, 0))[1]
            if n != self.n_items_:
                raise ShapeError(f"validation data has {n} items but the training data has {self.n_items_}; "
                                 "split once and fit on split.train so all parts share the item index")
            # same size is not enough: columns must mean the same items
            m = part.align_items(self.item_ids_).matrix if isinstance(part, Interactions) \
                else _as_csr(part, "validation data")
            out.append(m)
        return tuple(out)

    # ------------------------------------------------------------------ to implement
    def _fit(self, X: sp.csr_matrix, valid=None, **fit_kwargs) -> None:
        raise NotImplementedError

    def _score_rows(self, X: sp.csr_matrix) -> torch.Tensor:
        """Scores ``(n_rows, n_items)`` on ``device_`` for history rows in the model's item index."""
        raise NotImplementedError

    def _score_users(self, rows: np.ndarray) -> torch.Tensor:
        """Scores for training users (row positions); defaults to folding in their history."""
        return self._score_rows(take_rows(self.user_items_, rows))

    def _get_state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _set_state(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ inputs
    def _ids(self, kind: str) -> IdIndex:
        """The (cached) lookup index of ``user_ids_`` or ``item_ids_``; built once per fit/load."""
        cache = self.__dict__.setdefault("_id_cache", {})
        ids = self.user_ids_ if kind == "user" else self.item_ids_
        if kind not in cache or cache[kind].ids is not ids:
            cache[kind] = IdIndex(ids, kind)
        return cache[kind]

    def _user_rows(self, user_ids) -> np.ndarray:
        return self._ids("user").lookup(user_ids)

    def _item_mask(self, items, exclude) -> torch.Tensor | None:
        """Boolean ``(n_items,)`` mask of allowed candidates, or None when all are allowed."""
        if items is None and exclude is None:
            return None
        index = self._ids("item")
        mask = torch.ones(self.n_items_, dtype=torch.bool)
        if items is not None:
            mask[:] = False
            mask[torch.as_tensor(index.lookup(items))] = True
        if exclude is not None:
            mask[torch.as_tensor(index.lookup(exclude))] = False
        return mask.to(self.device_)

    def _history_rows(self, history, unknown: str) -> tuple[sp.csr_matrix, bool]:
        """History in any accepted form → (CSR rows in the model's item index, is_single_user)."""
        if isinstance(history, Interactions):
            return history.align_items(self.item_ids_, unknown=unknown).matrix, False
        if sp.issparse(history):
            X = _as_csr(history, "history")
            if X.shape[1] != self.n_items_:
                raise ShapeError(
                    f"history has shape {X.shape} ({X.shape[1]} columns) but the model was fit on "
                    f"{self.n_items_} items" + (" (did you pass an item×user matrix?)" if X.shape[0] == self.n_items_ else "")
                )
            _check_non_negative(X, "history", self)
            return X, False
        if isinstance(history, dict):
            keys = list(history.keys())
            try:
                values = np.asarray(list(history.values()), dtype=np.float64)
            except (TypeError, ValueError):
                values = np.full(len(keys), np.nan)
            if not np.all(np.isfinite(values)):
                bad = [(k, v) for k, v in history.items()][int(np.flatnonzero(~np.isfinite(values))[0])]
                raise DataError(f"history values must be finite numbers; got {bad[1]!r} for item {bad[0]!r}")
        elif isinstance(history, (list, tuple, np.ndarray, set)) or np.isscalar(history):
            keys = list(np.atleast_1d(as_array(list(history) if isinstance(history, set) else history, "history")))
            values = np.ones(len(keys))
        else:
            raise DataError(f"history must be a list of item ids, a dict item→value, an Interactions or a "
                            f"sparse matrix; got {type(history).__name__}")
        cols = self._ids("item").lookup(keys, unknown="ignore") if keys else np.zeros(0, np.int64)
        if unknown == "raise" and np.any(cols < 0):
            self._ids("item").lookup(keys)  # raises with the unknown ids named
        keep = cols >= 0
        _check_non_negative(sp.csr_matrix(values[keep].reshape(1, -1)), "history", self)
        X = sp.csr_matrix((values[keep], (np.zeros(keep.sum(), np.int64), cols[keep])), shape=(1, self.n_items_),
                          dtype=np.float32)
        X.sum_duplicates()
        return X, True

    # ------------------------------------------------------------------ ranking
    @torch.no_grad()  # ranking never needs gradients; a model's scorer may forget to turn them off
    def _rank(self, score_chunk, seen: sp.csr_matrix | None, n_rows: int, n: int, mask) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` over chunks of rows; ``score_chunk(start, stop)`` returns a scores tensor."""
        n_candidates = self.n_items_ if mask is None else int(mask.sum())
        k = min(n, n_candidates)
        ids = np.empty((n_rows, k), dtype=np.int64)
        scores = np.empty((n_rows, k), dtype=np.float32)
        for start, stop in row_chunks(n_rows, self.n_items_):
            s = score_chunk(start, stop).float()
            _check_scores(s, self, start)
            if mask is not None:
                s = s.masked_fill(~mask, -torch.inf)
            if seen is not None:
                s[csr_coords(seen[start:stop], s.device)] = -torch.inf
            top = torch.topk(s, k, dim=1)
            ids[start:stop] = top.indices.cpu().numpy()
            scores[start:stop] = top.values.cpu().numpy()
        ids[~np.isfinite(scores)] = -1
        return ids, scores

    def _to_raw(self, ids: np.ndarray, scores: np.ndarray, single: bool):
        # integer ids pad with -1 (unsigned ones widen to int64); strings pad with None
        kind = self.item_ids_.dtype.kind
        out_dtype, raw_pad = {"i": (self.item_ids_.dtype, -1), "u": (np.int64, -1)}.get(kind, (object, None))
        valid = ids >= 0
        raw = np.empty(ids.shape, dtype=out_dtype)
        raw[valid] = self.item_ids_[ids[valid]]
        raw[~valid] = raw_pad
        if single:
            keep = valid[0]
            return raw[0][keep], scores[0][keep]
        return raw, scores

    def recommend(self, user_ids, n: int = 10, *, exclude_seen: bool = True, items=None, exclude=None):
        """Top-``n`` items for training users.

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
            candidates left is padded with id ``-1`` (``None`` for string ids) and score ``-inf``.
        scores : ndarray of float32, same shape, non-increasing along each row.
        """
        self._check_fitted()
        n = _check_n(n)
        single = _is_scalar(user_ids, "user ids")
        rows = self._user_rows(user_ids)
        seen = take_rows(self.user_items_, rows) if exclude_seen else None
        ids, scores = self._rank(lambda a, b: self._score_users(rows[a:b]), seen, len(rows), n,
                                 self._item_mask(items, exclude))
        return self._to_raw(ids, scores, single)

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
            What to do with history items the model has never seen.

        Returns
        -------
        ids, scores : as in :meth:`recommend`.
        """
        self._check_fitted()
        n = _check_n(n)
        check_choice(unknown, "unknown", ("raise", "ignore"))
        X, single = self._history_rows(history, unknown)
        ids, scores = self._rank(lambda a, b: self._score_rows(X[a:b]), X if exclude_seen else None,
                                 X.shape[0], n, self._item_mask(items, exclude))
        return self._to_raw(ids, scores, single)

    def score(self, history) -> np.ndarray:
        """Raw scores for history rows.

        Parameters
        ----------
        history : Interactions or scipy.sparse matrix of shape (n_rows, n_items)
            Columns follow the model's item index (an Interactions is aligned by raw id).

        Returns
        -------
        ndarray of float32, shape (n_rows, n_items)
        """
        self._check_fitted()
        if not (isinstance(history, Interactions) or sp.issparse(history)):
            raise DataError(f"score expects an Interactions or a sparse matrix of shape (n_rows, {self.n_items_}); "
                            f"got {type(history).__name__} (use recommend_new for a list of item ids)")
        X, _ = self._history_rows(history, "raise")
        out = np.empty(X.shape, dtype=np.float32)
        for start, stop in row_chunks(X.shape[0], self.n_items_):
            with torch.no_grad():
                s = self._score_rows(X[start:stop]).float()
            _check_scores(s, self, start)
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
        from ..anomaly import user_anomaly_scores

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
        n = _check_n(n)
        single = _is_scalar(item_ids, "item ids")
        cols = self._ids("item").lookup(item_ids)
        X = sp.csr_matrix((np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
                          shape=(len(cols), self.n_items_))
        ids, scores = self._rank(lambda a, b: self._item_similarity(cols[a:b], X[a:b]), X, len(cols), n, None)
        return self._to_raw(ids, scores, single)

    def _item_similarity(self, cols: np.ndarray, onehot: sp.csr_matrix) -> torch.Tensor:
        """Similarity of the given items to every item; default: fold in a one-item history."""
        return self._score_rows(onehot)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write weights (safetensors) and JSON metadata to one file; never pickles."""
        from ..io import save_model

        self._check_fitted()
        save_model(self, path)

    @classmethod
    def load(cls, path, device: str | None = None) -> "Recommender":
        """Load a model written by :meth:`save`; refuses files that are not recae models."""
        from ..io import load_model

        model = load_model(path, device=device)
        if cls is not Recommender and not isinstance(model, cls):
            raise ModelFileError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}; use recae.load")
        return model
