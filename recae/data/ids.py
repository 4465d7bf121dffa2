"""Raw-id ↔ index maps. Raw ids never leave the data object and the model's edges."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..exceptions import DataError, ShapeError, UnknownIdError
from .validate import as_array, check_choice


def normalize_id_column(values, name: str) -> np.ndarray:
    """Validate one column of raw ids and return it as int64 or object (str) array.

    Ids may be integers or strings, not a mix, and never missing. Floats are accepted only
    when every value is integral (a common result of reading CSVs with missing cells).
    """
    s = pd.Series(values, copy=False)
    # Missing values first: a categorical with NaN cannot be cast to its (int) categories.
    missing = s.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"column {name!r} has {int(missing.sum())} missing id(s); first at row {first}; "
                        "drop those rows (df.dropna(subset=[...])) before building Interactions. (Read from a "
                        "file, ids such as 'NA', 'None' or 'null' become missing: pd.read_csv(..., "
                        "keep_default_na=False) keeps them as text.)", row=first)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype)
    kind = pd.api.types.infer_dtype(s, skipna=False)
    if kind == "integer":
        if pd.api.types.is_unsigned_integer_dtype(s.dtype) and len(s) and s.max() > np.iinfo(np.int64).max:
            raise DataError(f"column {name!r} holds integer ids above the int64 range (e.g. {s.max()}); "
                            "convert them to strings")
        try:
            return s.to_numpy(dtype=np.int64)
        except (OverflowError, ValueError, TypeError) as exc:
            raise DataError(f"column {name!r} holds integer ids that do not fit in int64 ({exc}); "
                            "convert them to strings") from None
    if kind == "floating":
        arr = s.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(arr)
        bad[~bad] = arr[~bad] != np.round(arr[~bad])
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"column {name!r} holds {int(bad.sum())} non-integral or non-finite float id(s) "
                            f"(e.g. {arr[bad][:3].tolist()}, first at row {first}); ids must be integers or strings",
                            row=first)
        if len(arr) and np.abs(arr).max() >= 2.0 ** 63:
            raise DataError(f"column {name!r} holds float ids outside the int64 range; convert them to strings")
        return arr.astype(np.int64)
    if kind == "string":
        return s.to_numpy(dtype=object)
    hint, row = "", None
    if kind == "bytes":
        hint = " (undecoded bytes: read the file with the right encoding, e.g. encoding='latin-1')"
    elif kind.startswith("mixed"):
        # name the first value whose type differs from the first one's: that is where to look
        types = s.map(type).to_numpy()
        other = np.flatnonzero(types != types[0]) if len(types) else np.zeros(0, np.int64)
        if len(other):
            row = int(other[0])
            hint = (f"; row 0 holds a {types[0].__name__} ({plain(s.iloc[0])!r}) but row {row} a "
                    f"{types[row].__name__} ({plain(s.iloc[row])!r}); convert the column with .astype(str)")
    raise DataError(
        f"column {name!r} must hold ids of one type (all integers or all strings); "
        f"got values of kind {kind!r} (dtype {s.dtype}), e.g. {s.iloc[:3].tolist()}{hint}", row=row
    )


def id_array(ids, name: str) -> np.ndarray:
    """Raw ids as integers (their integer dtype kept) or strings (an object array, as ``from_pandas``
    makes them), refusing ragged input, missing values and mixed types."""
    arr = as_array(ids, name)
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.size == 0 or arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind == "U" and isinstance(ids, np.ndarray):
        return arr.astype(object)  # one string type for all logs: lookups, messages and padding agree
    # np.asarray turns [1, "a"] into two strings: check the values as they were given
    values = ids if isinstance(ids, (np.ndarray, pd.Series, pd.Index)) else list(ids)
    return normalize_id_column(pd.Series(values, dtype=object), name)


def as_id_array(raw, what: str, object_ids: bool = False) -> np.ndarray:
    """Raw ids as an array, each id as given: numpy would turn ``[10, "x"]`` into two strings."""
    if isinstance(raw, Iterator):  # a generator or map: numpy would keep it as one object, an "unknown id"
        raw = list(raw)
    arr = as_array(raw, what, dtype=object if object_ids else None)
    if arr.dtype.kind == "U" and isinstance(raw, (list, tuple)) and not all(isinstance(x, str) for x in raw):
        arr = np.empty(len(raw), dtype=object)
        arr[:] = list(raw)
    return arr


def plain(value):
    """A numpy scalar as the Python value: messages read ``3`` not ``np.int64(3)``, JSON keeps numbers."""
    return value.item() if isinstance(value, np.generic) else value


def shown(values) -> list:
    """Ids as a message shows them: plain Python values (``'50'``, not ``np.str_('50')``)."""
    return [plain(v) for v in values]


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
        check_choice(unknown, "unknown", ("raise", "ignore"))
        arr = np.atleast_1d(as_id_array(raw, f"{self.kind} ids", object_ids=self.ids.dtype == object))
        if arr.ndim != 1:
            dense = " (a dense history matrix? pass scipy.sparse.csr_matrix(it))" if arr.ndim == 2 and self.kind == "item" \
                else ""
            raise DataError(f"{self.kind} ids must be a scalar or a 1-D array; got shape {arr.shape}{dense}")
        if not self.index.is_unique:
            dup = self.index[self.index.duplicated()].unique()[:5].tolist()
            raise DataError(f"{self.kind} ids must be unique; repeated: {dup}")
        try:
            pos = self.index.get_indexer(arr)
        except (TypeError, ValueError) as exc:  # unhashable or incomparable values
            raise DataError(f"could not look up {self.kind} ids {arr[:3].tolist()}: {exc}") from None
        missing = pos < 0
        if missing.any() and unknown == "raise":
            bad = arr[missing]
            word = "strings" if self.ids.dtype == object else "integers"
            raise UnknownIdError(
                f"{int(missing.sum())} unknown {self.kind} id(s), e.g. {shown(bad[:5])}; "
                f"known {self.kind} ids are {word} like {shown(self.ids[:3])} ({len(self)} in all)"
            )
        return pos.astype(np.int64)
