"""The user×item interaction log: raw ids outside, a CSR matrix inside."""

from __future__ import annotations

import csv
import difflib
import logging
import os
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..exceptions import ConversionWarning, DataError, ShapeError, UnknownIdError
from .ids import IdIndex, normalize_id_column, plain
from .validate import as_array, as_path, as_positions, check_choice, check_int, check_real
from .sparse import build_csr, entry_rows, row_positions, take_rows

logger = logging.getLogger(__name__)

_DUPLICATE_RULES = ("last", "sum", "first", "raise")


def _column_hint(col, columns: list) -> str:
    """A likely intended column: a byte-order mark, a case difference or a close spelling."""
    names = [c for c in columns if isinstance(c, str)]
    if any(c.startswith("\ufeff") for c in names):
        return " The first column name starts with a byte-order mark: read the file with encoding='utf-8-sig'."
    if isinstance(col, str):
        same_case = [c for c in names if c.lower() == col.lower()]
        close = same_case or difflib.get_close_matches(col, names, n=1, cutoff=0.6)
        if close:
            return f" Did you mean {close[0]!r}?"
    return ""


def _require_columns(df: pd.DataFrame, wanted: dict[str, str | None]) -> None:
    for role, col in wanted.items():
        if col is None and role in ("user", "item"):
            raise DataError(f"{role} must name the {role} id column; got None (columns: {list(df.columns)})")
        try:
            hash(col)
        except TypeError:
            raise DataError(f"{role} must be a column name; got {type(col).__name__} {col!r}") from None
        if col is not None and col not in df.columns:
            raise DataError(
                f"column {col!r} (the {role} column) not found; available columns: "
                f"{list(df.columns)}. Pass {role}=<column name>.{_column_hint(col, list(df.columns))}"
            )
        if col is not None and int((df.columns == col).sum()) > 1:
            raise DataError(f"column {col!r} (the {role} column) appears more than once in {list(df.columns)}")


def _numeric_column(s: pd.Series, name: str, allow_datetime: bool = False) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s) and not allow_datetime:
        raise DataError(f"column {name!r} must be numeric; got dtype {s.dtype} (dates belong in the timestamp column)")
    if pd.api.types.is_datetime64_any_dtype(s):
        if s.isna().any():
            row = int(np.flatnonzero(s.isna().to_numpy())[0])
            raise DataError(f"column {name!r} has {int(s.isna().sum())} missing timestamp(s); first at row {row}",
                            row=row)
        # datetimes become seconds since the epoch (UTC for time-zone aware columns);
        # the unit of the column does not matter
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        # through integer microseconds: subtracting a nanosecond Timestamp overflows past 2262
        micros = s.to_numpy().astype("datetime64[us]").astype(np.int64)
        return micros.astype(np.float64) / 1e6
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        # an object column may still hold plain numbers (e.g. built from Python lists)
        is_text = s.map(lambda v: isinstance(v, (str, bytes)), na_action="ignore").fillna(False).astype(bool)
        try:
            coerced = pd.to_numeric(s.mask(is_text), errors="coerce")
        except (TypeError, ValueError):  # containers and other objects pandas cannot coerce
            coerced = pd.Series(np.nan, index=s.index)
        bad = ((coerced.isna() & s.notna()) | is_text).to_numpy()
        if bad.any():
            # numbers stored as text ("5") are refused too, but point first at values that are
            # not numbers even as text ("five"): those are why a file's column was read as text
            try:
                hopeless = (pd.to_numeric(s, errors="coerce").isna() & s.notna()).to_numpy()
            except (TypeError, ValueError):
                hopeless = bad
            shown = hopeless if hopeless.any() else bad
            first = s[shown].iloc[:3].tolist()
            row = int(np.flatnonzero(shown)[0])
            raise DataError(
                f"column {name!r} must be numeric; got dtype {s.dtype} with non-numeric values such as {first} "
                f"(first at row {row})", row=row
            )
        s = coerced
    arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {name!r} has {int(bad.sum())} NaN or infinite value(s); first at row {i} "
            f"(value {arr[i]}). Drop or fill them before building Interactions.", row=i
        )
    return arr


def _parser_message(path: str, exc: Exception, kwargs: dict) -> str:
    """pandas' parser message, with the line number when the engine did not give one.

    The C and python engines name the line; pyarrow only quotes the row, so re-parse with the
    C engine (on the error path only) to find it.
    """
    msg = str(exc).strip()
    if "line" in msg.lower() or kwargs.get("engine") != "pyarrow":
        return msg
    try:
        pd.read_csv(path, **{**kwargs, "engine": "c"})
    except pd.errors.ParserError as exc2:
        return f"{msg} ({str(exc2).strip()})"
    except Exception:
        pass
    return msg


def _id_array(ids, name: str) -> np.ndarray:
    """Raw ids as given (their dtype kept), refusing ragged input, missing values and mixed types."""
    arr = as_array(ids, name)
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.size == 0 or arr.dtype.kind in "iu" or (arr.dtype.kind == "U" and isinstance(ids, np.ndarray)):
        return arr
    # np.asarray turns [1, "a"] into two strings: check the values as they were given
    values = ids if isinstance(ids, (np.ndarray, pd.Series, pd.Index)) else list(ids)
    normalized = normalize_id_column(pd.Series(values, dtype=object), name)
    return arr if arr.dtype.kind in "UO" else normalized


#: read_csv options under which data row ``i`` can be traced back to a line of the file.
_TRACEABLE_OPTIONS = {"sep", "delimiter", "encoding", "dtype", "usecols", "engine", "quotechar", "header"}


def _line_of_row(path: str, row: int, kwargs: dict) -> int | None:
    """1-based line of the file where data row ``row`` starts, or None when that cannot be known.

    Only for plain files (one header line, single-character separator, no skipped or comment
    lines): pandas then skips blank lines only, the ``csv`` module follows the same quoting
    rules and ``line_num`` counts physical lines (quoted fields may span several).
    """
    sep = kwargs.get("sep", kwargs.get("delimiter", ","))
    if set(kwargs) - _TRACEABLE_OPTIONS or not isinstance(sep, str) or len(sep) != 1 \
            or kwargs.get("header", "infer") not in ("infer", 0):
        return None
    try:
        with open(path, newline="", encoding=kwargs.get("encoding") or "utf-8") as f:
            reader = csv.reader(f, delimiter=sep, quotechar=kwargs.get("quotechar", '"'))
            seen = -1  # the header
            for fields in reader:
                if not fields:
                    continue  # blank line, skipped by pandas too
                if seen == row:
                    return reader.line_num - "".join(fields).count("\n")
                seen += 1
    except (OSError, UnicodeError, LookupError, csv.Error):
        return None
    return None


class Interactions:
    """A user×item interaction log held as a CSR matrix plus the raw id maps.

    Rows are users and columns items, always. Raw ids are sorted when built from a log, so
    the same log in any row order gives the same object.

    Parameters
    ----------
    matrix : scipy.sparse matrix of shape (n_users, n_items)
        Interaction values (ratings, counts or ones). Converted to CSR float32.
    user_ids : array-like of shape (n_users,), optional
        Raw user id of each row; defaults to ``0..n_users-1``.
    item_ids : array-like of shape (n_items,), optional
        Raw item id of each column; defaults to ``0..n_items-1``.
    timestamps : ndarray of shape (nnz,), optional
        One timestamp per stored entry, aligned with ``matrix.data``.
    has_ratings : bool, default False
        Whether the values are explicit ratings (rather than counts or ones).

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_users, n_items), float32
    user_ids, item_ids : ndarray
    timestamps : ndarray of shape (nnz,) or None
    """

    def __init__(self, matrix, user_ids=None, item_ids=None, timestamps=None, *, has_ratings=False):
        if not sp.issparse(matrix):
            raise DataError(f"matrix must be a scipy.sparse matrix of shape (n_users, n_items); got "
                            f"{type(matrix).__name__}"
                            + (" (wrap a dense array with scipy.sparse.csr_matrix)" if isinstance(matrix, np.ndarray) else ""))
        if matrix.ndim != 2:
            raise ShapeError(f"matrix must be 2-D (n_users, n_items); got shape {matrix.shape}")
        if matrix.format != "csr":
            warnings.warn(f"Interactions got a {matrix.format.upper()} matrix; converting to CSR (pass a CSR "
                          "matrix to avoid the copy)", ConversionWarning, stacklevel=2)
        try:
            m = sp.csr_matrix(matrix, dtype=np.float32)
        except (TypeError, ValueError) as exc:  # e.g. an object or string dtype
            raise DataError(f"matrix values must be numeric; got dtype {matrix.dtype} ({exc})") from None
        if timestamps is None and not m.has_canonical_format:
            m = m.copy()  # csr_matrix shares the caller's arrays; sum_duplicates would sort them in place
            m.sum_duplicates()
        self.matrix = m
        self.user_ids = np.arange(m.shape[0]) if user_ids is None else _id_array(user_ids, "user_ids")
        self.item_ids = np.arange(m.shape[1]) if item_ids is None else _id_array(item_ids, "item_ids")
        if self.user_ids.shape != (m.shape[0],):
            raise ShapeError(f"user_ids has shape {self.user_ids.shape}; expected ({m.shape[0]},) for a matrix of shape {m.shape}")
        if self.item_ids.shape != (m.shape[1],):
            raise ShapeError(f"item_ids has shape {self.item_ids.shape}; expected ({m.shape[1]},) for a matrix of shape {m.shape}")
        if timestamps is not None:
            timestamps = as_array(timestamps, "timestamps", dtype=np.float64)
            if timestamps.shape != (m.nnz,):
                raise ShapeError(f"timestamps has shape {timestamps.shape}; expected ({m.nnz},), one per stored entry")
            if not np.all(np.isfinite(timestamps)):
                raise DataError(f"timestamps hold {int((~np.isfinite(timestamps)).sum())} NaN or infinite value(s)")
        if not np.all(np.isfinite(m.data)):
            raise DataError(f"matrix has {int((~np.isfinite(m.data)).sum())} NaN or infinite value(s)")
        self.timestamps = timestamps
        self.has_ratings = bool(has_ratings)
        self._users = IdIndex(self.user_ids, "user")
        self._items = IdIndex(self.item_ids, "item")
        for index, given in ((self._users, user_ids), (self._items, item_ids)):
            if given is not None and not index.index.is_unique:
                dup = index.index[index.index.duplicated()].unique()[:5].tolist()
                raise DataError(f"{index.kind} ids must be unique (one per {'row' if index.kind == 'user' else 'column'}); "
                                f"repeated: {dup}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pandas(cls, df: pd.DataFrame, user: str = "user", item: str = "item", rating: str | None = None,
                    timestamp: str | None = None, duplicates: str | None = None) -> "Interactions":
        """Build from a DataFrame with one row per interaction.

        Parameters
        ----------
        df : pandas.DataFrame
        user, item : str
            Columns with raw user and item ids (integers or strings).
        rating : str, optional
            Column with explicit ratings. Without it every row counts as 1 (implicit feedback).
        timestamp : str, optional
            Column with numeric or datetime timestamps (datetimes become epoch seconds).
        duplicates : {"last", "sum", "first", "raise"}, optional
            What to do with repeated (user, item) rows. Default: ``"last"`` with ratings (the
            latest by timestamp wins, else the last row), ``"sum"`` without (counts add up).

        Returns
        -------
        Interactions
        """
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame; got {type(df).__name__}")
        if len(df) == 0:
            raise DataError(f"the interaction log is empty (0 rows; columns: {list(df.columns)})")
        _require_columns(df, {"user": user, "item": item, "rating": rating, "timestamp": timestamp})
        if duplicates is None:
            duplicates = "last" if rating is not None else "sum"
        duplicates = check_choice(duplicates, "duplicates", _DUPLICATE_RULES)
        users = normalize_id_column(df[user], user)
        items = normalize_id_column(df[item], item)
        values = _numeric_column(df[rating], rating) if rating is not None else np.ones(len(df))
        ts = _numeric_column(df[timestamp], timestamp, allow_datetime=True) if timestamp is not None else None
        ucodes, uids = pd.factorize(users, sort=True)
        icodes, iids = pd.factorize(items, sort=True)
        ucodes = ucodes.astype(np.int64)
        icodes = icodes.astype(np.int64)
        n_users, n_items = len(uids), len(iids)
        key = ucodes * n_items + icodes
        rowpos = np.arange(len(df))
        if duplicates == "sum":
            ukey, inv = np.unique(key, return_inverse=True)
            values = np.bincount(inv, weights=values, minlength=len(ukey))
            if ts is not None:
                latest = np.full(len(ukey), -np.inf)
                np.maximum.at(latest, inv, ts)
                ts = latest
        else:
            # order entries by key, then time, then row; keep the last (or first) of each key
            order = np.lexsort((rowpos, ts if ts is not None else rowpos, key))
            sk = key[order]
            boundary = np.ones(len(sk), dtype=bool)
            if duplicates in ("last", "raise"):
                boundary[:-1] = sk[1:] != sk[:-1]
            else:
                boundary[1:] = sk[1:] != sk[:-1]
            if duplicates == "raise" and not boundary.all():
                dup = order[np.flatnonzero(~boundary)[0]]
                raise DataError(
                    f"duplicate (user, item) row: user {plain(users[dup])!r}, item {plain(items[dup])!r} "
                    f"(row {int(dup)}); "
                    "pass duplicates='last' or 'sum' to resolve repeats", row=int(dup)
                )
            keep = order[boundary]
            ukey, values = key[keep], values[keep]
            ts = ts[keep] if ts is not None else None
        m, order = build_csr(ukey // n_items, ukey % n_items, values, (n_users, n_items))
        return cls(m, np.asarray(uids), np.asarray(iids), None if ts is None else ts[order], has_ratings=rating is not None)

    @classmethod
    def from_csv(cls, path, user: str = "user", item: str = "item", rating: str | None = None,
                 timestamp: str | None = None, duplicates: str | None = None, **read_csv_kwargs) -> "Interactions":
        """Read a delimited text log with :func:`pandas.read_csv`, then :meth:`from_pandas`.

        Malformed lines raise a :class:`~recae.exceptions.DataError` that names the line:
        lines with too many fields when parsing, and (for plain header + rows files) lines
        whose values are missing, non-numeric or non-finite.
        """
        path = as_path(path)
        if not os.path.exists(path):
            raise DataError(f"no such file: {path!r}")
        if os.path.isdir(path):
            raise DataError(f"{path!r} is a directory, not a file")
        encoding = read_csv_kwargs.get("encoding") or "utf-8"
        try:
            df = pd.read_csv(path, **read_csv_kwargs)
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path!r} holds no data ({exc})") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"could not parse {path!r}: {_parser_message(path, exc, read_csv_kwargs)}") from None
        except UnicodeError as exc:
            where = f" ({exc.reason} at byte {exc.start})" if isinstance(exc, UnicodeDecodeError) else f" ({exc})"
            raise DataError(f"{path!r} is not valid {encoding} text{where}; pass encoding='latin-1' or the "
                            "file's encoding") from None
        except LookupError as exc:  # an encoding name Python does not know
            raise DataError(f"unknown encoding {encoding!r} ({exc}); pass a codec name such as 'utf-8' or "
                            "'latin-1'") from None
        except OSError as exc:
            raise DataError(f"could not read {path!r}: {exc}") from None
        except ValueError as exc:  # e.g. a dtype= option the values do not fit
            raise DataError(f"could not read {path!r}: {exc}") from None
        try:
            return cls.from_pandas(df, user, item, rating, timestamp, duplicates)
        except DataError as exc:
            line = None if exc.row is None else _line_of_row(path, exc.row, read_csv_kwargs)
            if line is None:
                raise
            raise DataError(f"{path}, line {line}: {exc}", row=exc.row) from None

    @classmethod
    def from_parquet(cls, path, user: str = "user", item: str = "item", rating: str | None = None,
                     timestamp: str | None = None, duplicates: str | None = None) -> "Interactions":
        """Read a Parquet log (needs ``pyarrow``), then :meth:`from_pandas`."""
        path = as_path(path)
        if not os.path.exists(path):
            raise DataError(f"no such file: {path!r}")
        cols = [c for c in (user, item, rating, timestamp) if c is not None]
        try:
            df = pd.read_parquet(path, columns=cols)
        except ImportError:
            raise
        except Exception:
            try:
                df = pd.read_parquet(path)  # let _require_columns name what is missing
            except ImportError:
                raise
            except Exception as exc:
                raise DataError(f"could not read {path!r} as Parquet: {exc}") from None
        return cls.from_pandas(df, user, item, rating, timestamp, duplicates)

    @classmethod
    def from_scipy(cls, matrix, user_ids=None, item_ids=None) -> "Interactions":
        """Wrap a user×item scipy sparse matrix; ids default to positions."""
        return cls(matrix, user_ids, item_ids)

    # ------------------------------------------------------------------ basics
    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def __repr__(self) -> str:
        kind = "ratings" if self.has_ratings else "implicit"
        return (f"Interactions({self.n_users} users × {self.n_items} items, {self.nnz} {kind} entries"
                f"{', timestamped' if self.timestamps is not None else ''})")

    def user_index(self, user_ids, *, unknown: str = "raise") -> np.ndarray:
        """Row positions of raw user ids (``-1`` for unknown ones with ``unknown="ignore"``)."""
        return self._users.lookup(user_ids, unknown=unknown)

    def item_index(self, item_ids, *, unknown: str = "raise") -> np.ndarray:
        """Column positions of raw item ids (``-1`` for unknown ones with ``unknown="ignore"``)."""
        return self._items.lookup(item_ids, unknown=unknown)

    def to_pandas(self, user: str = "user", item: str = "item", rating: str = "rating",
                  timestamp: str = "timestamp") -> pd.DataFrame:
        """One row per stored entry, with raw ids, values and timestamps (when present)."""
        rows = entry_rows(self.matrix.indptr)
        out = {user: self.user_ids[rows], item: self.item_ids[self.matrix.indices], rating: self.matrix.data.copy()}
        if self.timestamps is not None:
            out[timestamp] = self.timestamps.copy()
        return pd.DataFrame(out)

    # ------------------------------------------------------------------ derived logs
    def _replace(self, matrix, user_ids=None, item_ids=None, timestamps=None, has_ratings=None) -> "Interactions":
        return Interactions(matrix, self.user_ids if user_ids is None else user_ids,
                            self.item_ids if item_ids is None else item_ids, timestamps,
                            has_ratings=self.has_ratings if has_ratings is None else has_ratings)

    def filter_entries(self, mask: np.ndarray) -> "Interactions":
        """Keep the stored entries where ``mask`` (shape (nnz,)) is true; ids unchanged."""
        mask = as_array(mask, "mask")
        if mask.dtype != bool:
            raise DataError(f"mask must be a boolean array of shape ({self.nnz},); got dtype {mask.dtype}")
        if mask.shape != (self.nnz,):
            raise ShapeError(f"mask has shape {mask.shape}; expected ({self.nnz},)")
        m = self.matrix
        counts = np.bincount(entry_rows(m.indptr)[mask], minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        new = sp.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=m.shape)
        ts = self.timestamps[mask] if self.timestamps is not None else None
        return self._replace(new, timestamps=ts)

    def binarize(self, threshold: float = 3.5) -> "Interactions":
        """Keep entries with value > ``threshold`` as 1.0 (implicit positives); ids unchanged.

        Users or items left without entries keep their (empty) row or column; follow with
        :meth:`filter` to drop them.
        """
        threshold = check_real(threshold, "threshold")
        out = self.filter_entries(self.matrix.data > threshold)
        out.matrix.data[:] = 1.0
        out.has_ratings = False
        return out

    def take_users(self, rows) -> "Interactions":
        """A log with only the given user rows (positions), in that order; items unchanged."""
        rows = as_positions(rows, "user rows")
        if rows.ndim != 1:
            raise ShapeError(f"user rows must be a 1-D array; got shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_users):
            raise ShapeError(f"user rows must lie in [0, {self.n_users}); got min {rows.min()}, max {rows.max()}")
        pos, _ = row_positions(self.matrix.indptr, rows)
        ts = self.timestamps[pos] if self.timestamps is not None else None
        return self._replace(take_rows(self.matrix, rows), user_ids=self.user_ids[rows], timestamps=ts)

    def take_items(self, cols) -> "Interactions":
        """A log restricted and re-indexed to the given item columns (positions), in that order."""
        cols = as_positions(cols, "item columns")
        if cols.ndim != 1:
            raise ShapeError(f"item columns must be a 1-D array; got shape {cols.shape}")
        if cols.size and (cols.min() < 0 or cols.max() >= self.n_items):
            raise ShapeError(f"item columns must lie in [0, {self.n_items}); got min {cols.min()}, max {cols.max()}")
        if len(np.unique(cols)) != len(cols):
            raise DataError("item columns must not repeat (an item can own only one column)")
        remap = np.full(self.n_items, -1, dtype=np.int64)
        remap[cols] = np.arange(len(cols))
        return self._remap_columns(remap, self.item_ids[cols])

    def _remap_columns(self, remap: np.ndarray, item_ids: np.ndarray) -> "Interactions":
        """Move column j to ``remap[j]`` (dropping it where -1) under the new ``item_ids``."""
        new_col = remap[self.matrix.indices]
        keep = new_col >= 0
        rows = entry_rows(self.matrix.indptr)[keep]
        m, order = build_csr(rows, new_col[keep], self.matrix.data[keep], (self.n_users, len(item_ids)))
        ts = self.timestamps[keep][order] if self.timestamps is not None else None
        return self._replace(m, item_ids=item_ids, timestamps=ts)

    def align_items(self, item_ids, *, unknown: str = "raise") -> "Interactions":
        """Re-index columns to another item-id array (e.g. a model's); unknown items raise or drop."""
        check_choice(unknown, "unknown", ("raise", "ignore"))
        item_ids = as_array(item_ids, "item_ids")
        if item_ids.ndim != 1:
            raise ShapeError(f"item_ids must be a 1-D array; got shape {item_ids.shape}")
        if item_ids.shape == self.item_ids.shape and np.array_equal(item_ids, self.item_ids):
            return self
        target = IdIndex(item_ids, "item")
        pos = target.lookup(self.item_ids, unknown="ignore")
        present = np.bincount(self.matrix.indices, minlength=self.n_items) > 0
        if unknown == "raise" and np.any((pos < 0) & present):
            bad = self.item_ids[(pos < 0) & present]
            raise UnknownIdError(
                f"{len(bad)} item id(s) are not in the model's catalogue, e.g. {bad[:5].tolist()}; "
                "pass unknown='ignore' to drop them"
            )
        return self._remap_columns(pos, item_ids)

    def filter(self, min_user: int = 1, min_item: int = 1, max_iter: int | None = None) -> "Interactions":
        """Iterated k-core: drop users with < ``min_user`` and items with < ``min_item`` entries.

        Repeats until both hold (dropping items can push users under the limit). Empty users
        and items are always dropped, so ``filter()`` compacts a binarized log. Every pass
        drops at least one user or item, so the loop always ends; ``max_iter`` (default: no
        limit) stops it early, and then the result may not satisfy the limits.
        """
        min_user, min_item = check_int(min_user, "min_user"), check_int(min_item, "min_item")
        max_iter = None if max_iter is None else check_int(max_iter, "max_iter", 1)
        # Prune on boolean masks over the original log and gather once at the end.
        m = self.matrix
        rows = entry_rows(m.indptr)
        cols = m.indices
        alive = np.ones(self.nnz, dtype=bool)
        keep_u = np.ones(self.n_users, dtype=bool)
        keep_i = np.ones(self.n_items, dtype=bool)
        n_pass = 0
        while max_iter is None or n_pass < max_iter:
            ucount = np.bincount(rows[alive], minlength=self.n_users)
            icount = np.bincount(cols[alive], minlength=self.n_items)
            new_u = keep_u & (ucount >= max(min_user, 1))
            new_i = keep_i & (icount >= max(min_item, 1))
            if np.array_equal(new_u, keep_u) and np.array_equal(new_i, keep_i):
                break
            keep_u, keep_i = new_u, new_i
            alive &= keep_u[rows] & keep_i[cols]
            n_pass += 1
        else:
            logger.warning("filter stopped after max_iter=%d passes before converging", max_iter)
        cur = self.take_users(np.flatnonzero(keep_u)).take_items(np.flatnonzero(keep_i))
        if cur.nnz == 0:
            raise DataError(f"no interactions left after filter(min_user={min_user}, min_item={min_item}) "
                            f"on {self!r}")
        return cur
