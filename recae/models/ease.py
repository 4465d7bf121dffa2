"""EASE: the closed-form shallow autoencoder.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019. With the Gram
matrix G = XᵀX and P = (G + λI)⁻¹, the item-item weights are B = I − P·diag(1/diag(P)),
i.e. B_ij = −P_ij / P_jj off the diagonal and 0 on it; a user's scores are x·B.

With ``dropout = p > 0`` this becomes EDLAE (Steck, "Autoencoders that don't overfit towards
the Identity", NeurIPS 2020): training under input dropout p is, in expectation, the same
least squares with the diagonal penalty λ + p/(1−p)·diag(XᵀX), which penalises popular
items' self-reconstruction more than a constant λ does.
"""

from __future__ import annotations

import logging
import math

import torch

from ..data.batching import rows_times
from ..exceptions import DataError, MemoryBudgetError
from .base import Recommender
from .closed_form import check_dtype_l2, check_memory, gram, is_real
from .params import store_params

logger = logging.getLogger(__name__)

def _over_budget(n: int, budget_gb) -> bool:
    try:
        check_memory("EASE", n, torch.float64, 3, budget_gb)
    except MemoryBudgetError:
        return True
    return False


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder (closed form, no training loop).

    Parameters
    ----------
    l2 : float, default 500.0
        L2 penalty λ on the item-item weights (500 is the tuned value on MovieLens).
    dropout : float in [0, 1), default 0.0
        Emphasized-denoising (EDLAE) input dropout; adds p/(1−p)·diag(XᵀX) to the penalty.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the Gram matrix and its inverse.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    memory_budget_gb : float, default 8.0
        Refuse to fit when the estimated memory (about 3 items² matrices) exceeds this.

    Attributes
    ----------
    B_ : torch.Tensor of shape (n_items, n_items)
        Item-item weights with a zero diagonal.
    """

    additive_scores = True  # scores are x·B: linear in the history, so explain() is exact

    def __init__(self, l2=500.0, dropout=0.0, dtype="float32", device="auto", memory_budget_gb=8.0):
        store_params(self, locals())

    def _check_settings(self) -> None:
        check_dtype_l2(self.dtype, self.l2)

    def _fit(self, X, valid=None):
        dtype = check_dtype_l2(self.dtype, self.l2)
        if not is_real(self.dropout) or not 0 <= self.dropout < 1:
            raise DataError(f"dropout must be a number in [0, 1); got {self.dropout!r}")
        check_memory("EASE", X.shape[1], dtype, 3, self.memory_budget_gb)
        try:
            P = self._inverse(X, dtype)
        except torch.linalg.LinAlgError as exc:
            top = float(X.data.max()) if X.nnz else 0.0
            counts = f"; the log holds values up to {top:g} (e.g. repeated clicks summed into counts), " \
                     "which stretches XᵀX: use presence (0/1) for implicit feedback" if top > 1 else ""
            if dtype == torch.float32 and not _over_budget(X.shape[1], self.memory_budget_gb):
                # float32 is too coarse for this Gram matrix (counts or very popular items): solve in float64
                logger.warning("EASE: the Gram matrix is singular in float32 (%s)%s; solving in float64", exc, counts)
                try:
                    P = self._inverse(X, torch.float64)
                except torch.linalg.LinAlgError as exc64:
                    raise DataError(f"the Gram matrix XᵀX + {self.l2}·I is singular even in float64 ({exc64}); use "
                                    f"a larger l2{counts} (items with identical or no interactions make XᵀX "
                                    "singular)") from None
            else:
                raise DataError(
                    f"the Gram matrix XᵀX + {self.l2}·I is singular ({exc}); use a larger l2"
                    + (" or dtype='float64'" if dtype == torch.float32 else "") + counts
                    + " (items with identical or no interactions make XᵀX singular)") from None
        if not P.is_contiguous() and P.T.is_contiguous():
            P = P.T  # LAPACK's column-major inverse is exactly symmetric: the row-major view, same numbers
        B = P / (-torch.diagonal(P))
        B.diagonal().zero_()
        self.B_ = B.to(torch.float32)

    def _inverse(self, X, dtype: torch.dtype) -> torch.Tensor:
        """(XᵀX + λI + EDLAE's diagonal)⁻¹ in ``dtype``; LinAlgError when it is numerically singular."""
        n = X.shape[1]
        logger.info("EASE: Gram matrix %d×%d (%s) on %s", n, n, dtype, self.device_)
        G = gram(X, self.device_, dtype)
        p = float(self.dropout)
        G.diagonal().mul_(1.0 + p / (1.0 - p)).add_(float(self.l2))
        # Cholesky of a singular matrix can "succeed" through rounding with a pivot of the order of
        # eps·‖G‖ and return garbage; a pivot that small means cond(G) is beyond this precision.
        scale = float(G.diagonal().max())
        L, info = torch.linalg.cholesky_ex(G)
        if int(info) != 0:
            raise torch.linalg.LinAlgError(f"leading minor {int(info)} is not positive definite")
        pivots = L.diagonal() ** 2
        tol = 64 * math.sqrt(n) * torch.finfo(dtype).eps * scale
        j = int(torch.argmin(pivots))
        if not float(pivots[j]) > tol:
            raise torch.linalg.LinAlgError(f"numerically singular: pivot {j} is {float(pivots[j]):.3g}, at most "
                                           f"{tol:.3g} for the largest diagonal entry {scale:.6g} in {dtype}")
        del G
        return torch.cholesky_inverse(L)

    def score_rows(self, X):
        return rows_times(X, self.B_)

    def get_state(self):
        return {"B": self.B_}

    def set_state(self, tensors):
        self.B_ = tensors["B"]
