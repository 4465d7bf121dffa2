"""What a model accepts as data, histories and validation, checked and converted to CSR in its item index."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ..data.ids import IdIndex, as_id_array, plain
from ..data.interactions import Interactions
from ..data.validate import as_array
from ..exceptions import ConversionWarning, DataError, DataWarning, ShapeError


FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_csr(X, what: str) -> sp.csr_matrix:
    """A float32 CSR copy-or-view of a scipy.sparse user×item matrix, with finite, summed entries."""
    if not sp.issparse(X):
        raise DataError(
            f"{what} must be an Interactions or a scipy.sparse user×item matrix; got {type(X).__name__}"
            + (" (wrap a dense array with scipy.sparse.csr_matrix)" if isinstance(X, np.ndarray) else "")
        )
    if X.ndim != 2:
        raise ShapeError(f"{what} must be a 2-D user×item matrix; got shape {X.shape}")
    if X.format != "csr":
        warnings.warn(f"{what} is a {X.format.upper()} matrix; converting to CSR (pass a CSR matrix to avoid "
                      "the copy)", ConversionWarning, stacklevel=4)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{what} must hold real numbers; got dtype {X.dtype}")
    try:
        with np.errstate(over="ignore"):  # a value past float32 is reported just below
            X = sp.csr_matrix(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must hold numbers; got dtype {X.dtype} ({exc})") from None
    if not np.all(np.isfinite(X.data)):
        raise DataError(f"{what} has {int((~np.isfinite(X.data)).sum())} NaN or infinite value(s) (as float32, "
                        f"which holds magnitudes up to {FLOAT32_MAX:.1e})")
    if not X.has_canonical_format:
        X = X.copy()  # csr_matrix shares the caller's arrays; sum_duplicates would sort them in place
        X.sum_duplicates()
    return X


def check_non_negative(X: sp.csr_matrix, what: str, model_name: str, allowed: bool) -> None:
    """Refuse negative entries, which the implicit-feedback losses and normalisations cannot take."""
    if allowed or not X.nnz:
        return
    low = float(X.data.min())
    if low < 0:
        raise DataError(
            f"{what} has {int((X.data < 0).sum())} negative value(s) (min {low:g}); {model_name} "
            "expects counts, ones or ratings >= 0. Binarize the log (data.binarize(threshold)) or shift the "
            "ratings so the lowest is 0"
        )


def is_scalar(ids, what: str) -> bool:
    """Whether ``ids`` is one id (1-D results) rather than a sequence of them (2-D results)."""
    if isinstance(ids, (str, bytes)):
        return True
    return as_array(ids, what, dtype=object).ndim == 0


def check_flag(value, name: str) -> bool:
    """A bool option: ``exclude_seen="no"`` is truthy, so anything but True/False is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise DataError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise DataError(f"n must be a positive integer; got {n!r}")
    return int(n)


def trained_items(model) -> np.ndarray:
    """Bool ``(n_items,)``: the items with a training entry, computed once per training matrix."""
    cached = model.__dict__.get("_trained_items")
    if cached is None or cached[0] is not model.user_items_:
        X = model.user_items_
        cached = (X, np.bincount(X.indices[X.data != 0], minlength=model.n_items_) > 0)
        model.__dict__["_trained_items"] = cached
    return cached[1]


def without_zeros(X: sp.csr_matrix) -> sp.csr_matrix:
    """``X`` without stored zeros (a copy when it has any): what a model of positives learns from.
    A stored 0 is a known non-interaction: seen (never recommended), never learned from or counted."""
    if X.nnz and not X.data.all():
        X = X.copy()
        X.eliminate_zeros()
    return X


def training_matrix(data) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(X, user ids, item ids) of training data: an Interactions, or a sparse matrix with positional ids."""
    if isinstance(data, Interactions):
        X, user_ids, item_ids = data.matrix, data.user_ids, data.item_ids
    else:
        X = as_csr(data, "training data")
        user_ids, item_ids = np.arange(X.shape[0]), np.arange(X.shape[1])
        if X.shape[1] > 20 * X.shape[0]:
            # a bare matrix carries no ids, so its orientation cannot be checked; this shape is a hint
            warnings.warn(f"training data has {X.shape[0]} rows and {X.shape[1]} columns; recae reads rows as "
                          "users and columns as items. If the rows are items, pass the transpose (X.T.tocsr()), "
                          "or build an Interactions with ids", DataWarning, stacklevel=4)
    if X.nnz == 0 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"training data is empty: shape {X.shape}, {X.nnz} entries; expected at least one "
                        "user-item interaction")
    return X, user_ids, item_ids


def history_matrix(history, items: IdIndex, n_items: int, unknown: str) -> tuple[sp.csr_matrix, bool]:
    """History in any accepted form → (CSR rows in the item index, is_single_user).

    Negative values are left for the caller to check (only some models accept them).
    """
    if isinstance(history, Interactions):
        aligned = history.align_items(items.ids, unknown=unknown)
        if aligned.nnz < history.nnz:  # as for a list or dict history: say what was left out
            gone = np.setdiff1d(np.unique(history.matrix.indices), history.item_index(items.ids, unknown="ignore"))
            warnings.warn(f"history: left out {history.nnz - aligned.nnz} entries of {len(gone)} unknown item id(s) "
                          f"{[plain(i) for i in history.item_ids[gone[:5]]]}" + (" and more" if len(gone) > 5 else ""),
                          DataWarning, stacklevel=4)
        return aligned.matrix, False
    if sp.issparse(history):
        X = as_csr(history, "history")
        if X.shape[1] != n_items:
            raise ShapeError(
                f"history has shape {X.shape} ({X.shape[1]} columns) but the model was fit on "
                f"{n_items} items" + (" (did you pass an item×user matrix?)" if X.shape[0] == n_items else "")
            )
        return X, False
    if isinstance(history, dict):
        keys, values = list(history.keys()), dict_values(history)
    elif isinstance(history, (list, tuple, np.ndarray, set)) or np.isscalar(history):
        keys = list(np.atleast_1d(as_id_array(list(history) if isinstance(history, set) else history, "history")))
        values = np.ones(len(keys))
    else:
        raise DataError(f"history must be a list of item ids, a dict item→value, an Interactions or a "
                        f"sparse matrix; got {type(history).__name__}")
    cols = items.lookup(keys, unknown="ignore") if keys else np.zeros(0, np.int64)
    if unknown == "raise" and np.any(cols < 0):
        items.lookup(keys)  # raises with the unknown ids named
    if np.any(cols < 0):
        left_out = [k.item() if isinstance(k, np.generic) else k for k in np.asarray(keys, dtype=object)[cols < 0]]
        warnings.warn(f"history: left out {len(left_out)} unknown item id(s) {left_out[:5]}"
                      + (" and more" if len(left_out) > 5 else "")
                      + ("; no known item is left, so the ranking is not personal (popularity; a rating model's item "
                            "means)" if not np.any(cols >= 0)
                         else ""), DataWarning, stacklevel=4)
    keep = cols >= 0
    X = sp.csr_matrix((values[keep], (np.zeros(keep.sum(), np.int64), cols[keep])), shape=(1, n_items),
                      dtype=np.float32)
    X.sum_duplicates()
    if not isinstance(history, dict):
        X.data[:] = 1.0  # an item listed twice is one interaction, as a log's repeated pair is
    return X, True


def dict_values(history: dict) -> np.ndarray:
    """The values of a dict history as float64, each a real number within float32's range."""
    return np.array([interaction_value(value, item, "history values") for item, value in history.items()],
                    dtype=np.float64)


def interaction_value(value, item, what: str = "ratings") -> float:
    """``value`` as a float: a real number (not a bool or text) within float32's range, or a DataError."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    try:
        out = float(value) if number else np.nan
    except OverflowError:  # an int past float64
        out = np.inf
    if not number or not abs(out) <= FLOAT32_MAX:
        raise DataError(f"{what} must be finite numbers (a rating or a count per item, at most "
                        f"{FLOAT32_MAX:.1e} in size); got {value!r} ({type(value).__name__}) for item {item!r}")
    return out


def validation_pair(valid, item_ids: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
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
        if n != len(item_ids):
            raise ShapeError(f"validation data has {n} items but the training data has {len(item_ids)}; "
                             "split once and fit on split.train so all parts share the item index")
        # same size is not enough: columns must mean the same items
        out.append(part.align_items(item_ids).matrix if isinstance(part, Interactions)
                   else as_csr(part, "validation data"))
    if out[0].shape[0] != out[1].shape[0]:
        raise ShapeError(f"the validation fold-in has {out[0].shape[0]} users but its target {out[1].shape[0]}; "
                         "row i of both must be the same user (a split's valid_fold_in and valid_target)")
    if out[1].nnz == 0:  # every score would be NaN, and early stopping would stop on nothing
        raise DataError("the validation target holds no entries: there is nothing to score; hold out more users "
                        "or entries, or fit without valid")
    return tuple(out)
