"""Shared pieces of the closed-form linear autoencoders (EASE, EDLAE, LinearAE): checks, memory, the Gram matrix."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

from ..data.batching import densify_rows
from ..exceptions import DataError, MemoryBudgetError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _gib(nbytes: float) -> str:
    """Bytes as GiB with enough digits that a small estimate does not print as 0.0."""
    gib = nbytes / 2**30
    return f"{gib:.1f}" if gib >= 1 else f"{gib:.3g}"


def check_dtype_l2(dtype: str, l2) -> torch.dtype:
    """The torch dtype named by ``dtype``, after checking it and the ridge penalty ``l2``."""
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise DataError(f"dtype must be one of {list(_DTYPES)}; got {dtype!r}")
    if not is_real(l2) or not l2 >= 0 or not math.isfinite(l2):
        raise DataError(f"l2 must be a finite number >= 0; got {l2!r}")
    return _DTYPES[dtype]


def check_memory(model: str, n: int, dtype: torch.dtype, copies: int, budget_gb) -> None:
    """Refuse a closed-form fit whose ``copies`` items×items matrices exceed the memory budget."""
    if not is_real(budget_gb) or not budget_gb > 0:
        raise DataError(f"memory_budget_gb must be a positive number; got {budget_gb!r}")
    nbytes = torch.finfo(dtype).bits // 8
    need = copies * n * n * nbytes
    budget = budget_gb * 2**30
    if need > budget:
        hint = "use dtype='float32', " if dtype != torch.float32 else ""
        raise MemoryBudgetError(
            f"{model} on {n} items needs about {_gib(need)} GiB ({copies} × {n}² × {nbytes} bytes) "
            f"but memory_budget_gb={budget_gb} ({_gib(budget)} GiB); raise the budget, {hint}"
            "drop rare items with Interactions.filter(min_item=...), or use a model whose memory does not grow "
            "with items²: SparseEASE(density=...) (sparse closed-form EASE, memory set by its density), "
            "FactorEASE(rank=...) (items × rank factors), or a neural model (MultVAE/MultDAE) whose memory grows "
            "linearly in the number of items (with sampled_softmax=0.1 when the catalogue makes the full softmax "
            "too slow; docs/scaling.md)"
        )


def gram(X, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """XᵀX as a dense items×items tensor on ``device``; X itself is never densified whole."""
    if device.type == "cpu":
        # a sparse product costs O(Σ_u |x_u|²), far below the dense O(users·items²) on a CPU
        Xd = X.astype(np.float64 if dtype == torch.float64 else np.float32)
        return torch.as_tensor((Xd.T @ Xd).toarray())
    G = torch.zeros((X.shape[1], X.shape[1]), dtype=dtype, device=device)
    step = max(1, (1 << 24) // max(X.shape[1], 1))  # dense row batches feed the GPU's GEMM
    for start in range(0, X.shape[0], step):
        xb = densify_rows(X[start:start + step], device, dtype)
        G.addmm_(xb.T, xb)
    return G
