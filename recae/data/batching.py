"""Densify CSR row batches on a device; the whole matrix is never densified."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def densify_rows(rows: sp.csr_matrix, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A dense ``(n_rows, n_cols)`` tensor on ``device`` from a (small) CSR batch."""
    n_rows, n_cols = rows.shape
    out = torch.zeros((n_rows, n_cols), dtype=dtype, device=device)
    if rows.nnz:
        counts = torch.as_tensor(np.diff(rows.indptr), device=device)
        r = torch.repeat_interleave(torch.arange(n_rows, device=device), counts)
        c = torch.as_tensor(rows.indices.astype(np.int64), device=device)
        out[r, c] = torch.as_tensor(rows.data, device=device).to(dtype)
    return out


def row_chunks(n_rows: int, n_cols: int, max_elements: int = 1 << 25):
    """Yield ``(start, stop)`` row ranges whose dense size stays under ``max_elements``."""
    step = max(1, min(n_rows, max_elements // max(n_cols, 1)))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)
