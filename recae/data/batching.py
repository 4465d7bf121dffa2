"""Densify CSR row batches on a device (or hand them on as coordinates); the whole matrix is never densified."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch


def csr_coords(rows: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) index tensors on ``device`` of a CSR batch's stored entries."""
    counts = torch.as_tensor(np.diff(rows.indptr), device=device)
    r = torch.repeat_interleave(torch.arange(rows.shape[0], device=device), counts)
    return r, torch.as_tensor(rows.indices.astype(np.int64), device=device)


def densify_rows(rows: sp.csr_matrix, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A dense ``(n_rows, n_cols)`` tensor on ``device`` from a (small) CSR batch."""
    out = torch.zeros(rows.shape, dtype=dtype, device=device)
    if rows.nnz:
        r, c = csr_coords(rows, device)
        out[r, c] = torch.as_tensor(rows.data, device=device).to(dtype)
    return out


#: Up to this many rows, :func:`rows_times` multiplies sparse on a CPU (see there).
SPARSE_PRODUCT_ROWS = 256


def rows_times(rows: sp.csr_matrix, W: torch.Tensor) -> torch.Tensor:
    """``rows @ W`` as a float32 ``(n_rows, k)`` tensor on ``W``'s device, for a ``(items, k)`` ``W``.

    On a CPU a batch of up to :data:`SPARSE_PRODUCT_ROWS` rows is multiplied sparse, O(nnz·k)
    instead of the dense O(rows·items·k); the serving path, one user at a time, gains most.
    Larger batches stay dense, where multi-threaded BLAS catches up and where ranking all users
    keeps the float summation order it always had.
    """
    if (W.device.type == "cpu" and rows.shape[0] <= SPARSE_PRODUCT_ROWS and W.dtype == torch.float32
            and W.is_contiguous()):  # scipy walks a column-major W far slower than BLAS does
        out = rows.astype(np.float32, copy=False) @ W.numpy()
        return torch.from_numpy(np.ascontiguousarray(out))
    return densify_rows(rows, W.device, W.dtype) @ W


def row_chunks(n_rows: int, n_cols: int, max_elements: int = 1 << 25):
    """Yield ``(start, stop)`` row ranges whose dense size stays under ``max_elements``."""
    step = max(1, min(n_rows, max_elements // max(n_cols, 1)))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def row_batches(n_rows: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
    """Row-index tensors covering ``range(n_rows)`` once, in a seeded permutation when shuffling.

    The batch order every training loader uses (sparse rows, rating rows, dense images).
    """
    if shuffle:
        order = torch.randperm(n_rows, generator=generator, device=generator.device if generator else "cpu")
    else:
        order = torch.arange(n_rows)
    for start in range(0, n_rows, batch_size):
        yield order[start:start + batch_size]


class DeviceCSR:
    """A CSR matrix whose three arrays live on a device (or in pinned host memory).

    Batches of rows are gathered and densified on the device with index arithmetic only:
    each row's start and length come from ``indptr``, ``repeat_interleave`` expands them to
    entry positions, and one scatter writes the values into a zero ``(batch, n_cols)`` tensor.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_rows, n_cols)
    device : torch.device
        Where batches are produced.
    memory_budget_gb : float, default 4.0
        Keep the arrays on ``device`` when they fit this budget; otherwise keep them in
        (pinned, when CUDA is used) host memory and copy each batch over.
    """

    def __init__(self, matrix: sp.csr_matrix, device: torch.device, memory_budget_gb: float = 4.0):
        self.shape = matrix.shape
        self.device = torch.device(device)
        nbytes = matrix.nnz * (8 + 4) + (matrix.shape[0] + 1) * 8  # int64 indices, float32 data, indptr
        on_device = self.device.type == "cpu" or nbytes <= memory_budget_gb * 2**30
        home = self.device if on_device else torch.device("cpu")
        self.indptr = torch.as_tensor(matrix.indptr.astype(np.int64), device=home)
        self.indices = torch.as_tensor(matrix.indices.astype(np.int64), device=home)
        self.data = torch.as_tensor(matrix.data.astype(np.float32), device=home)
        if home.type == "cpu" and self.device.type == "cuda":
            self.indptr, self.indices, self.data = (t.pin_memory() for t in (self.indptr, self.indices, self.data))

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    def gather(self, rows: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Dense ``(len(rows), n_cols)`` tensor on ``self.device`` for the given row indices."""
        owner, cols, vals = self.gather_coords(rows)
        out = torch.zeros((len(rows), self.shape[1]), dtype=dtype, device=self.device)
        out[owner, cols] = vals.to(dtype)
        return out

    def gather_coords(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stored entries of the given rows on ``self.device``: (position in ``rows``, column, value).

        Positions are non-decreasing and each row's columns keep the matrix's order; nothing of
        size ``len(rows) × n_cols`` is formed.
        """
        home = self.indptr.device
        rows = rows.to(home)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        total = int(lengths.sum())
        owner = torch.repeat_interleave(torch.arange(len(rows), device=home), lengths, output_size=total)
        first = torch.cumsum(lengths, 0) - lengths
        pos = starts[owner] + torch.arange(total, device=home) - first[owner]
        cols = self.indices[pos].to(self.device, non_blocking=True)
        vals = self.data[pos].to(self.device, non_blocking=True)
        return owner.to(self.device, non_blocking=True), cols, vals

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
        """Yield row-index tensors covering every row once (a seeded permutation when shuffling)."""
        return row_batches(self.n_rows, batch_size, shuffle=shuffle, generator=generator)


class SparseRows(NamedTuple):
    """A batch of rows as coordinates: entry e is ``x[rows[e], cols[e]] = vals[e]`` (``rows`` non-decreasing).

    What :class:`SparseRowLoader` hands a loss instead of a dense ``shape`` block, for models
    whose loss needs only the nonzeros (memory O(nnz), not O(batch × n_cols)).
    """

    rows: torch.Tensor
    cols: torch.Tensor
    vals: torch.Tensor
    shape: tuple[int, int]

    def to_dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The dense ``shape`` block (what :meth:`DeviceCSR.gather` returns)."""
        out = torch.zeros(self.shape, dtype=dtype, device=self.vals.device)
        out[self.rows, self.cols] = self.vals.to(dtype)
        return out


class SparseRowLoader:
    """A :class:`DeviceCSR` whose ``gather`` returns :class:`SparseRows` (explicit zeros left out)."""

    def __init__(self, csr: DeviceCSR):
        self.csr = csr
        self.shape = csr.shape

    @property
    def n_rows(self) -> int:
        return self.csr.n_rows

    def gather(self, rows: torch.Tensor, dtype: torch.dtype = torch.float32) -> SparseRows:
        r, c, v = self.csr.gather_coords(rows)
        keep = v != 0  # a dense batch's nonzero() would not see them either
        if not bool(keep.all()):
            r, c, v = r[keep], c[keep], v[keep]
        return SparseRows(r, c, v.to(dtype), (len(rows), self.shape[1]))

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
        return self.csr.batches(batch_size, shuffle=shuffle, generator=generator)
