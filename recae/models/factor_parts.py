"""FactorEASE's parts: unit-norm item factors with hand-written backward passes, and its factored scores."""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import nn

from ..data.batching import csr_coords
from .ranking import FactoredScores


class UnitRows(torch.autograd.Function):
    """A = W / ‖W‖ by rows (``normalize(W, dim=1)``); backward dW = (g − A·⟨g, A⟩) / ‖W‖ in three passes.

    Autograd's backward of the division forms −g·W/‖W‖² and reduces it: several times the work."""

    @staticmethod
    def forward(ctx, w):
        norm = w.norm(dim=1, keepdim=True).clamp_min(1e-12)
        a = w / norm
        ctx.save_for_backward(a, norm)
        return a

    @staticmethod
    def backward(ctx, g):
        a, norm = ctx.saved_tensors
        along = torch.linalg.vecdot(g, a, dim=1).unsqueeze(1)
        return torch.addcmul(g, a, along, value=-1).div_(norm)


class Gram(torch.autograd.Function):
    """AᵀA (r × r) with the backward dA = A·(G + Gᵀ): one items × r² product instead of autograd's two."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a.T @ a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return a @ (g + g.T)


class ItemFactors(nn.Module):
    """The raw item matrix W (items × rank); :meth:`factors` is A, its rows scaled to unit norm."""

    def __init__(self, n_items: int, rank: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_items, rank))
        nn.init.xavier_uniform_(self.weight)

    def factors(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        w = self.weight if rows is None else self.weight[rows]
        return UnitRows.apply(w) if torch.is_grad_enabled() else nn.functional.normalize(w, dim=1)


class FactorLayer:
    """A as an output layer (``weight`` items × rank, no ``bias``), the shape FactoredScores ranks."""

    def __init__(self, weight: torch.Tensor):
        self.weight = weight
        self.bias = None

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(hidden.to(self.weight.dtype), self.weight, self.bias)


class MinusHistory(FactoredScores):
    """(x·A·Aᵀ − x)·diag(w) by item chunks: each chunk's own history subtracted, then the item weights."""

    def __init__(self, hidden: torch.Tensor, layer: FactorLayer, X: sp.csr_matrix, weights: torch.Tensor | None):
        super().__init__(hidden, layer)
        self.X = X.tocsc()  # column slices of the history per chunk
        self.weights = weights

    def chunk(self, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        s = super().chunk(start, stop, out)
        part = self.X[:, start:stop].tocsr()
        if part.nnz:  # subtracted where the history is, not as a dense rows × chunk block
            s.index_put_(csr_coords(part, s.device), torch.as_tensor(-part.data, dtype=s.dtype, device=s.device),
                         accumulate=True)
        return s if self.weights is None else s.mul_(self.weights[start:stop])
