"""LinearAE: the low-rank linear autoencoder in closed form (reduced-rank ridge regression).

A user's scores are x·B with B = V_r·diag(s/(s+λ))·V_rᵀ, where V_r holds the top-r
eigenvectors of the Gram matrix G = XᵀX and s their eigenvalues. This B is the exact
minimiser of ‖X − XB‖² + λ‖B‖² over rank-r matrices (reduced-rank ridge regression with
the input as its own target): the ridge fit's leading right singular vectors are those of
X, so truncating it to rank r keeps V_r. With λ = 0 it is PureSVD (Cremonesi et al.,
RecSys 2010); Steck, "Autoencoders that don't overfit towards the Identity" (NeurIPS 2020)
studies the same low-rank family. The rank bottleneck, not a zero diagonal as in EASE,
keeps it from learning the identity.

The defaults (rank 1024, λ 1000) are the best setting alone on a grid over ML-1M validation.
As a :class:`~recae.models.blend.Blend` member it does most with a weaker penalty, which is poor
alone but adds low-rank, factor-like scores that the full-rank EASE and the non-linear models
miss; that setting is data in one place, :data:`recae.models.blend.MEMBER_SETTINGS`, read by
``Blend()`` and ``recae bench``. The measured figures: ``benchmarks/results/blend_members_ml1m.md``.
"""

from __future__ import annotations

import logging
from numbers import Integral

import numpy as np
import torch

from ..data.batching import rows_times
from ..exceptions import DataError
from .base import Recommender
from .closed_form import check_dtype_l2, check_memory, gram
from .params import store_params

logger = logging.getLogger(__name__)


def _not_converged(exc) -> DataError:
    return DataError(f"the eigendecomposition of XᵀX did not converge even in float64 ({exc}); items with identical "
                     "interactions, or values so large that XᵀX overflows, make it ill-conditioned: a larger l2 will "
                     "not help; dropping rare items (data.filter(min_item=...)) or scaling the values down may")


class LinearAE(Recommender):
    """Low-rank linear autoencoder (closed form, no training loop).

    Parameters
    ----------
    rank : int, default 1024
        Bottleneck size r; capped at the number of items (then it is full-rank ridge).
    l2 : float, default 1000.0
        Ridge penalty λ; each kept component is shrunk by s / (s + λ). A Blend member does best
        with a weaker one (:data:`recae.models.blend.MEMBER_SETTINGS`).
    dtype : {"float32", "float64"}, default "float32"
        Precision of the Gram matrix and its eigendecomposition.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    memory_budget_gb : float, default 8.0
        Refuse to fit when the estimated memory (about 4 items² matrices) exceeds this.

    Attributes
    ----------
    item_factors_ : torch.Tensor of shape (n_items, rank_)
        V_r·diag(√(s/(s+λ))), so that B = item_factors_ · item_factors_ᵀ.
    rank_ : int
        The rank used: ``rank``, or fewer when XᵀX has fewer eigenvalues above rounding noise
        (fewer users than items, empty items); directions X does not span are left out.

    Notes
    -----
    The fit is a full eigendecomposition, O(items³) whatever the rank: seconds for a few
    thousand items, far longer at 20,000. ``similar_items`` decodes a one-item history (the
    row of B), as for EASE, rather than taking the cosine of the factors.
    """

    additive_scores = True  # scores are (x·V)·Vᵀ: linear in the history, so explain() is exact

    def __init__(self, rank=1024, l2=1000.0, dtype="float32", device="auto", memory_budget_gb=8.0):
        store_params(self, locals())

    def _check_settings(self) -> None:
        check_dtype_l2(self.dtype, self.l2)
        if isinstance(self.rank, bool) or not isinstance(self.rank, Integral) or self.rank < 1:
            raise DataError(f"rank must be a positive integer; got {self.rank!r}")

    def _fit(self, X, valid=None):
        self._check_settings()
        dtype = check_dtype_l2(self.dtype, self.l2)
        n = X.shape[1]
        # the eigendecomposition holds G, its eigenvectors and about 2n² of LAPACK workspace
        check_memory("LinearAE", n, dtype, 4, self.memory_budget_gb)
        # items without interactions add zero rows and columns to XᵀX: their factors are 0, and many
        # equal zero eigenvalues can keep LAPACK's float32 eigh from converging, so they stay out of it
        used = np.flatnonzero(np.bincount(X.indices[X.data != 0], minlength=n) > 0)
        G = gram(X[:, used] if len(used) < n else X, self.device_, dtype)
        logger.info("LinearAE: eigendecomposition of the %d×%d Gram matrix (%s) on %s", len(used), len(used),
                    self.dtype, self.device_)
        try:
            if not bool(torch.isfinite(G).all()):  # float32 XᵀX overflowed: not every backend's eigh raises on it
                raise torch.linalg.LinAlgError("XᵀX holds values past float32's range")
            evals, evecs = torch.linalg.eigh(G)  # ascending order
        except torch.linalg.LinAlgError as exc:
            if dtype == torch.float64:
                raise _not_converged(exc) from None
            logger.warning("LinearAE: the float32 eigendecomposition did not converge (%s); solving in float64", exc)
            check_memory("LinearAE", len(used), torch.float64, 4, self.memory_budget_gb)
            dtype = torch.float64
            del G  # built again in float64: a float32 XᵀX may have lost the precision (or overflowed)
            G = gram(X[:, used] if len(used) < n else X, self.device_, dtype)
            try:
                evals, evecs = torch.linalg.eigh(G)
            except torch.linalg.LinAlgError as exc64:
                raise _not_converged(exc64) from None
        # numpy.linalg.matrix_rank's tolerance: below it an eigenvalue is rounding noise, and
        # its eigenvector an arbitrary direction that X does not span (users < items)
        tol = float(evals[-1]) * n * torch.finfo(dtype).eps
        self.rank_ = min(int(self.rank), int((evals > tol).sum()))
        if self.rank_ == 0:
            raise DataError("the Gram matrix XᵀX is zero to working precision; the data has no interactions to fit")
        evals, evecs = evals[-self.rank_:], evecs[:, -self.rank_:]
        shrink = evals / (evals + float(self.l2))
        factors = torch.zeros(n, self.rank_, dtype=torch.float32, device=evecs.device)
        factors[torch.as_tensor(used, device=evecs.device)] = (evecs * shrink.sqrt()).flip(1).to(torch.float32)
        self.item_factors_ = factors.contiguous()

    def score_rows(self, X):
        V = self.item_factors_
        return rows_times(X, V) @ V.T

    def get_state(self):
        return {"item_factors": self.item_factors_}

    def set_state(self, tensors):
        self.item_factors_ = tensors["item_factors"]
        self.rank_ = int(self.item_factors_.shape[1])
