"""Rating-matrix pieces of the explicit models: the masked loss, rating batches, statistics, fold-in."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..data.batching import DeviceCSR
from ..data.sparse import entry_rows
from ..exceptions import DataError


def masked_sse(pred: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ over observed cells of (pred − value)²; unobserved cells give no loss and no gradient.

    Parameters
    ----------
    pred, values, mask : Tensor of shape (n_rows, n_cols)
        ``mask`` is 1 where a rating is observed and 0 elsewhere.
    """
    # multiplying the residual (not the square) by the mask makes d loss / d pred exactly 0
    # on unobserved cells, whatever the prediction there
    return ((pred.float() - values) * mask).pow(2).sum()


class RatingRows:
    """Row batches of a rating matrix as ``(values, mask)`` pairs of dense tensors.

    The mask comes from the CSR structure (stored entries), not from ``values != 0``.
    Shares :class:`~recae.data.batching.DeviceCSR`'s gathering, so it plugs into
    :func:`recae.train.Trainer.run_batches` unchanged.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_rows, n_cols)
    device : torch.device
    """

    def __init__(self, matrix: sp.csr_matrix, device: torch.device):
        self.values = DeviceCSR(matrix, device)
        ones = sp.csr_matrix((np.ones(matrix.nnz, np.float32), matrix.indices, matrix.indptr), shape=matrix.shape)
        self.mask = DeviceCSR(ones, device)
        self.shape = matrix.shape
        self.nnz = matrix.nnz

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
        return self.values.batches(batch_size, shuffle=shuffle, generator=generator)

    def gather(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.values.gather(rows), self.mask.gather(rows)

    def count(self, rows: torch.Tensor) -> int:
        """Observed ratings in ``rows``."""
        indptr = self.values.indptr
        rows = rows.to(indptr.device)
        return int((indptr[rows + 1] - indptr[rows]).sum())


def row_stats(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(count, mean) of the stored entries of every row; mean is NaN for empty rows."""
    counts = np.diff(X.indptr).astype(np.int64)
    sums = np.bincount(entry_rows(X.indptr), weights=X.data.astype(np.float64), minlength=X.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return counts, means


def check_ratings(X: sp.csr_matrix, rating_range, what: str = "training data") -> None:
    """Raise DataError for NaN/inf ratings or ratings outside the declared ``rating_range``."""
    bad = ~np.isfinite(X.data)
    if bad.any():
        raise DataError(f"{what}: the rating column has {int(bad.sum())} NaN or infinite value(s); "
                        "drop or fill them first")
    if rating_range is not None and X.nnz:
        low, high = rating_range
        out = (X.data < low) | (X.data > high)
        if out.any():
            vals = np.unique(X.data[out])[:5].tolist()
            raise DataError(f"{what}: the rating column has {int(out.sum())} value(s) outside the declared scale "
                            f"rating_range=({low}, {high}), e.g. {vals}; fix the data or declare the scale")


@torch.no_grad()
def ridge_fold_in(X: sp.csr_matrix, features: torch.Tensor, offset: torch.Tensor, prior: torch.Tensor,
                  alpha: float, per_rating: bool = False) -> torch.Tensor:
    """Predictions for new rating rows from per-row ridge regressions on fixed item features.

    For each row with ratings ``r`` on items ``S``, solves
    ``min_w Σ_{i∈S} (r_i − offset_i − f_i·w)² + a‖w − prior‖²`` (``a = alpha``, or
    ``alpha·|S|`` with ``per_rating``) and returns ``offset + F w`` for every item. This is
    the user's own subproblem of the training objective with the item side held fixed.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_items)
    features : Tensor of shape (n_items, d)
    offset : Tensor of shape (n_items,)
    prior : Tensor of shape (d,)
    alpha : float
        Ridge strength (> 0).

    Returns
    -------
    Tensor of shape (n_rows, n_items)
    """
    F = features.double()
    off = offset.double()
    base = F @ prior.double() + off
    out = base.expand(X.shape[0], -1).clone()
    d = F.shape[1]
    for r in range(X.shape[0]):
        lo, hi = X.indptr[r], X.indptr[r + 1]
        if hi == lo:
            continue
        cols = torch.as_tensor(X.indices[lo:hi].astype(np.int64), device=F.device)
        resid = torch.as_tensor(X.data[lo:hi], dtype=torch.float64, device=F.device) - base[cols]
        Fs = F[cols]
        a = alpha * (hi - lo) if per_rating else alpha
        if hi - lo <= d:  # the dual system is the smaller one
            delta = Fs.T @ torch.linalg.solve(Fs @ Fs.T + a * torch.eye(hi - lo, dtype=F.dtype, device=F.device), resid)
        else:
            delta = torch.linalg.solve(Fs.T @ Fs + a * torch.eye(d, dtype=F.dtype, device=F.device), Fs.T @ resid)
        out[r] += F @ delta
    return out.float()
