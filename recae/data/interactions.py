"""The user×item interaction log: raw ids outside, a CSR matrix inside.

Building one from a DataFrame is in :mod:`recae.data.frames`, reading a log file in
:mod:`recae.data.logfiles`; this module holds the class and the derived logs (filters,
binarization, row and column selection).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..exceptions import ConversionWarning, DataError, ShapeError, UnknownIdError
from .drops import MOST, RATINGS_SHARE, DropRecord, binarize_advice, filter_advice, reason, warn_if_most_dropped
from .frames import check_frame, frame_to_csr
from .ids import IdIndex, id_array, shown
from .logfiles import exact_ids, read_csv_frame, read_parquet_frame, rows_as_lines
from .sparse import build_csr, canonical_csr, entry_rows, row_positions, take_rows
from .validate import as_array, as_path, as_positions, check_choice, check_int, check_real

logger = logging.getLogger(__name__)


def check_interactions(data, what: str = "data"):
    """``data`` when it is an :class:`Interactions`; DataError naming the type otherwise."""
    if not isinstance(data, Interactions):
        hint = ""
        if hasattr(data, "columns"):
            hint = " (build one with Interactions.from_pandas(df, user=..., item=...))"
        elif hasattr(data, "tocsr"):
            hint = " (wrap a sparse matrix with Interactions.from_scipy(matrix))"
        raise DataError(f"{what} must be an Interactions; got {type(data).__name__}{hint}")
    return data


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
    merged_rows : int
        Rows of the source log merged into an existing (user, item) entry by ``from_pandas``.
    drops : tuple of :class:`~recae.data.drops.DropRecord`
        The filter steps that made this log, each with the raw user and item ids it removed
        (see :meth:`why_dropped`); derived logs inherit it.
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
        if timestamps is not None:
            timestamps = as_array(timestamps, "timestamps", dtype=np.float64)
        m, timestamps = canonical_csr(matrix, timestamps)
        self.matrix = m
        self.user_ids = np.arange(m.shape[0]) if user_ids is None else id_array(user_ids, "user_ids")
        self.item_ids = np.arange(m.shape[1]) if item_ids is None else id_array(item_ids, "item_ids")
        if self.user_ids.shape != (m.shape[0],):
            raise ShapeError(f"user_ids has shape {self.user_ids.shape}; expected ({m.shape[0]},) for a matrix of shape {m.shape}")
        if self.item_ids.shape != (m.shape[1],):
            raise ShapeError(f"item_ids has shape {self.item_ids.shape}; expected ({m.shape[1]},) for a matrix of shape {m.shape}")
        self.timestamps = timestamps
        self.has_ratings = bool(has_ratings)
        self.merged_rows, self.drops = 0, ()
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
            Column with numeric or datetime timestamps (datetimes become epoch seconds; a text
            column of dates, e.g. ISO 8601, is parsed, zone-less dates as UTC).
        duplicates : {"last", "sum", "first", "raise"}, optional
            What to do with repeated (user, item) rows. Default ``"last"``: with ratings the
            latest by timestamp wins (else the last row); without ratings (a click log) each
            pair is one entry of 1.0 (implicit presence) stamped with its latest time.
            ``"sum"`` adds the values up instead: without ratings, the number of events per
            pair. How many rows were merged is logged at INFO and kept in ``merged_rows``.

        Returns
        -------
        Interactions
        """
        check_frame(df, user, item, rating, timestamp)
        m, uids, iids, ts = frame_to_csr(df, user, item, rating, timestamp, duplicates)
        out = cls(m, uids, iids, ts, has_ratings=rating is not None)
        out.merged_rows = len(df) - out.nnz
        return out

    @classmethod
    def from_csv(cls, path, user: str = "user", item: str = "item", rating: str | None = None,
                 timestamp: str | None = None, duplicates: str | None = None, **read_csv_kwargs) -> "Interactions":
        """Read a delimited text log with :func:`pandas.read_csv`, then :meth:`from_pandas`.

        Malformed lines raise a :class:`~recae.exceptions.DataError` that names the line:
        lines with too many fields when parsing, and (for plain header + rows files) lines
        whose values are missing, non-numeric or non-finite.
        """
        path = as_path(path)
        ids_as_text = "dtype" not in read_csv_kwargs  # a dtype the caller gave is theirs to keep
        if ids_as_text:
            read_csv_kwargs = {**read_csv_kwargs, "dtype": {user: str, item: str}}
        df = read_csv_frame(path, read_csv_kwargs)
        if ids_as_text:
            df = exact_ids(df, (user, item))
        with rows_as_lines(path, read_csv_kwargs):
            return cls.from_pandas(df, user, item, rating, timestamp, duplicates)

    @classmethod
    def from_parquet(cls, path, user: str = "user", item: str = "item", rating: str | None = None,
                     timestamp: str | None = None, duplicates: str | None = None) -> "Interactions":
        """Read a Parquet log (needs ``pyarrow``), then :meth:`from_pandas`."""
        path = as_path(path)
        df = read_parquet_frame(path, [c for c in (user, item, rating, timestamp) if c is not None])
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
    def why_dropped(self, user_id) -> str | None:
        """``"removed by filter(min_user=5, min_item=1)"`` when a recorded filter removed this raw user id, else None."""
        return reason(self.drops, user_id)

    def _replace(self, matrix, user_ids=None, item_ids=None, timestamps=None, has_ratings=None) -> "Interactions":
        out = Interactions(matrix, self.user_ids if user_ids is None else user_ids,
                           self.item_ids if item_ids is None else item_ids, timestamps,
                           has_ratings=self.has_ratings if has_ratings is None else has_ratings)
        out.merged_rows, out.drops = self.merged_rows, self.drops  # the log's history goes with it
        return out

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
        :meth:`filter` to drop them. Keeping under half of the entries (a quarter, of real
        ratings) warns (:class:`~recae.exceptions.DataWarning`) with advice: on a log without
        ratings (1.0 per pair, or counts) binarize is rarely what was meant.
        """
        threshold = check_real(threshold, "threshold")
        keep = self.matrix.data > threshold
        warn_if_most_dropped(f"binarize({threshold:g})", self.nnz, int(keep.sum()),
                             binarize_advice(self.matrix.data, self.has_ratings, threshold),
                             RATINGS_SHARE if self.has_ratings else MOST)
        out = self.filter_entries(keep)
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
        item_ids = id_array(item_ids, "item_ids")  # refuses mixed types, which numpy would make strings
        if item_ids.shape == self.item_ids.shape and np.array_equal(item_ids, self.item_ids):
            return self
        target = IdIndex(item_ids, "item")
        pos = target.lookup(self.item_ids, unknown="ignore")
        present = np.bincount(self.matrix.indices, minlength=self.n_items) > 0
        text = [ids.dtype.kind in "OUS" for ids in (self.item_ids, item_ids)]
        if present.any() and len(item_ids) and not np.any(pos[present] >= 0) and text[0] != text[1]:
            # every entry would be dropped: "10" is not 10
            kinds = ["strings" if t else "integers" for t in text]
            raise DataError(f"the item ids here are {kinds[0]} (e.g. {shown(self.item_ids[:3])}) but the catalogue's "
                            f"are {kinds[1]} (e.g. {shown(item_ids[:3])}): no item matches; read both with the same "
                            "id type")
        if unknown == "raise" and np.any((pos < 0) & present):
            bad = self.item_ids[(pos < 0) & present]
            raise UnknownIdError(
                f"{len(bad)} item id(s) are not in the model's catalogue, e.g. {shown(bad[:5])}; "
                "pass unknown='ignore' to drop them"
            )
        return self._remap_columns(pos, item_ids)

    def filter(self, min_user: int = 1, min_item: int = 1, max_iter: int | None = None) -> "Interactions":
        """Iterated k-core: drop users with < ``min_user`` and items with < ``min_item`` entries.

        Repeats until both hold (dropping items can push users under the limit). Empty users
        and items are always dropped, so ``filter()`` compacts a binarized log. Every pass
        drops at least one user or item, so the loop always ends; ``max_iter`` (default: no
        limit) stops it early, and then the result may not satisfy the limits.

        What it removed is logged at INFO and appended to ``drops`` (see :meth:`why_dropped`);
        keeping under half of the entries warns (:class:`~recae.exceptions.DataWarning`).
        """
        min_user, min_item = check_int(min_user, "min_user", 1), check_int(min_item, "min_item", 1)
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
        step = f"filter(min_user={min_user}, min_item={min_item})"
        if cur.nnz == 0:
            raise DataError(f"no interactions left after {step} on {self!r}; "
                            + filter_advice(np.diff(m.indptr), min_user, min_item))
        if cur.shape != self.shape:
            record = DropRecord(step, self.user_ids[~keep_u], self.item_ids[~keep_i], (*self.shape, self.nnz),
                                (*cur.shape, cur.nnz))
            cur.drops = self.drops + (record,)
            logger.info("%s", record.summary())
        warn_if_most_dropped(step, self.nnz, cur.nnz, filter_advice(np.diff(m.indptr), min_user, min_item))
        return cur
