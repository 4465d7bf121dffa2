"""Vectorised helpers over CSR arrays (no Python loop per row)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
