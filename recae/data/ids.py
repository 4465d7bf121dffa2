"""Raw-id ↔ index maps. Raw ids never leave the data object and the model's edges."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError, UnknownIdError


def normalize_id_column(values, name: str) -> np.ndarray:
    """Validate one column of raw ids and return it as int64 or object (str) array.

    Ids may be integers or strings, not a mix, and never missing. Floats are accepted only
    when every value is integral (a common result of reading CSVs with missing cells).
    """
    s = pd.Series(values, copy=False)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype)
    if s.isna().any():
        first = int(np.flatnonzero(s.isna().to_numpy())[0])
        raise DataError(f"column {name!r} has {int(s.isna().sum())} missing id(s); first at row {first}")
    kind = pd.api.types.infer_dtype(s, skipna=False)
    if kind == "integer":
        return s.to_numpy(dtype=np.int64)
    if kind == "floating":
        arr = s.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise DataError(f"column {name!r} holds non-integral float ids (e.g. {arr[arr != np.round(arr)][:3].tolist()}); ids must be integers or strings")
        return arr.astype(np.int64)
    if kind == "string":
        return s.to_numpy(dtype=object)
    raise DataError(
        f"column {name!r} must hold ids of one type (all integers or all strings); "
        f"got values of kind {kind!r} (dtype {s.dtype}), e.g. {s.iloc[:3].tolist()}"
    )


class IdIndex:
    """An ordered array of unique raw ids with vectorised lookup.

    Parameters
    ----------
    ids : array-like of shape (n,)
        Unique raw ids; position ``i`` is index ``i``.
    kind : {"user", "item"}
        Used in error messages.
    """

    def __init__(self, ids, kind: str):
        self.ids = np.asarray(ids)
        self.kind = kind
        self._index = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self.ids)
        return self._index

    def lookup(self, raw, *, unknown: str = "raise") -> np.ndarray:
        """Positions of raw ids.

        Parameters
        ----------
        raw : scalar or array-like of shape (n,)
        unknown : {"raise", "ignore"}
            ``"ignore"`` returns -1 for unknown ids instead of raising.

        Returns
        -------
        ndarray of int64, shape (n,)
        """
        arr = np.atleast_1d(np.asarray(raw, dtype=object if self.ids.dtype == object else None))
        if arr.ndim != 1:
            raise DataError(f"{self.kind} ids must be a scalar or a 1-D array; got shape {arr.shape}")
        try:
            pos = self.index.get_indexer(arr)
        except (TypeError, ValueError) as exc:  # unhashable or incomparable values
            raise DataError(f"could not look up {self.kind} ids {arr[:3].tolist()}: {exc}") from None
        missing = pos < 0
        if missing.any() and unknown == "raise":
            bad = arr[missing]
            word = "strings" if self.ids.dtype == object else "integers"
            raise UnknownIdError(
                f"{int(missing.sum())} unknown {self.kind} id(s), e.g. {bad[:5].tolist()}; "
                f"known {self.kind} ids are {word} like {self.ids[:3].tolist()} ({len(self)} in all)"
            )
        return pos.astype(np.int64)
