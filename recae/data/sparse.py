"""Vectorised helpers over CSR arrays (no Python loop per row)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import DataError, ShapeError


def row_positions(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the stored entries of ``rows`` and the indptr of the gathered matrix.

    Parameters
    ----------
    indptr : ndarray of shape (n_rows + 1,)
        CSR row pointer.
    rows : ndarray of shape (n_take,)
        Row indices to gather (any order, repeats allowed).

    Returns
    -------
    positions : ndarray of shape (nnz_taken,)
        Indices into the CSR ``data``/``indices`` arrays, row by row.
    new_indptr : ndarray of shape (n_take + 1,)
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    new_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_indptr[1:])
    # Each entry's offset inside its row, added to its row's start in the source.
    offsets = np.arange(new_indptr[-1], dtype=np.int64) - np.repeat(new_indptr[:-1], lengths)
    return np.repeat(starts, lengths) + offsets, new_indptr


def take_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Gather rows of a CSR matrix, keeping explicit zeros and entry order."""
    pos, indptr = row_positions(matrix.indptr, rows)
    return sp.csr_matrix(
        (matrix.data[pos], matrix.indices[pos], indptr), shape=(len(indptr) - 1, matrix.shape[1])
    )


def entry_rows(indptr: np.ndarray) -> np.ndarray:
    """Row index of every stored entry, shape (nnz,)."""
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))


def build_csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> tuple[sp.csr_matrix, np.ndarray]:
    """CSR from coordinates that are already unique; also returns the order used.

    The returned ``order`` sorts the input entries row-major, so aligned per-entry arrays
    (timestamps) can be permuted the same way: ``aligned[order]``.
    """
    order = np.lexsort((cols, rows))
    counts = np.bincount(rows, minlength=shape[0])
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    m = sp.csr_matrix((values[order], cols[order].astype(np.int32), indptr), shape=shape)
    return m, order


def _where(m: sp.csr_matrix, bad: np.ndarray) -> str:
    """Row and column of the first flagged stored entry of ``m``."""
    first = int(np.flatnonzero(bad)[0])
    return f"row {int(entry_rows(m.indptr)[first])}, column {int(m.indices[first])}"


def canonical_csr(matrix, timestamps: np.ndarray | None = None) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """``matrix`` as float32 CSR with sorted columns and one entry per (row, column).

    Parameters
    ----------
    matrix : scipy.sparse matrix of shape (n_rows, n_cols)
    timestamps : ndarray of shape (nnz,), optional
        One per stored entry of ``matrix``, in its storage order (``matrix.data``'s); they are
        moved with their entries. An entry stored twice cannot keep two timestamps, so with
        them repeated (row, column) entries are refused; without them they are summed.

    Returns
    -------
    csr : scipy.sparse.csr_matrix of shape (n_rows, n_cols), float32
    timestamps : ndarray of shape (csr.nnz,) or None
    """
    if matrix.dtype.kind == "c":
        raise DataError(f"matrix values must be real numbers; got dtype {matrix.dtype}")
    if timestamps is not None and matrix.format not in ("csr", "csc", "coo"):
        raise DataError(f"timestamps follow the stored entries of a CSR, CSC or COO matrix; got a "
                        f"{matrix.format.upper()} matrix (convert it first)")
    if timestamps is not None and timestamps.shape != (matrix.nnz,):
        raise ShapeError(f"timestamps has shape {timestamps.shape}; expected ({matrix.nnz},), one per stored entry")
    if timestamps is not None and not np.all(np.isfinite(timestamps)):
        raise DataError(f"timestamps hold {int((~np.isfinite(timestamps)).sum())} NaN or infinite value(s)")

    def convert(dtype) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """The CSR and the order that moved the entries there (None: they stay where they are)."""
        if timestamps is None or (matrix.format == "csr" and matrix.has_canonical_format):
            m = sp.csr_matrix(matrix, dtype=dtype)
            if timestamps is None and not m.has_canonical_format:
                m = m.copy()  # csr_matrix shares the caller's arrays; sum_duplicates would sort them in place
                m.sum_duplicates()
            return m, None
        coo = matrix.tocoo()  # keeps the entries' storage order, so timestamps stay aligned
        return build_csr(coo.row.astype(np.int64), coo.col.astype(np.int64), np.asarray(coo.data, dtype=dtype),
                         matrix.shape)

    try:
        m, order = convert(np.float32)
    except (TypeError, ValueError) as exc:  # e.g. an object or string dtype
        raise DataError(f"matrix values must be numeric; got dtype {matrix.dtype} ({exc})") from None
    if order is not None:
        rows = entry_rows(m.indptr)
        repeated = np.append((np.diff(m.indices) == 0) & (np.diff(rows) == 0), False)
        if repeated.any():
            pairs = int((repeated & ~np.concatenate(([False], repeated[:-1]))).sum())  # a run of copies is one pair
            raise DataError(f"matrix stores {pairs} (row, column) pair(s) more than once (first at "
                            f"{_where(m, repeated)}); with timestamps each pair must be stored once "
                            "(Interactions.from_pandas(..., duplicates=...) merges a log's repeats)")
        timestamps = timestamps[order]
    bad = ~np.isfinite(m.data)
    if bad.any():
        wide, _ = convert(np.float64)  # the same entries in the same order, before float32 rounding
        if np.all(np.isfinite(wide.data[bad])):
            raise DataError(f"matrix has {int(bad.sum())} value(s) beyond float32's range (±3.4e38), first "
                            f"{float(wide.data[bad][0]):g} at {_where(m, bad)}; scale them down")
        raise DataError(f"matrix has {int(bad.sum())} NaN or infinite value(s), first at {_where(m, bad)}")
    return m, timestamps
