"""The rule behind ``recae fit --model auto``: dense EASE where it fits, the sparse one where it does not."""

from __future__ import annotations

import torch

from ..exceptions import MemoryBudgetError
from .closed_form import check_memory
from .ease import EASE
from .sparse_ease import SparseEASE


def auto_linear(n_items: int, memory_budget_gb: float = 8.0) -> type:
    """``EASE`` when its three float32 items × items matrices fit ``memory_budget_gb``, else ``SparseEASE``.

    Dense EASE is exact and, below the budget, fast; past it SparseEASE keeps EASE's closed form
    with memory set by its density (see ``benchmarks/results/`` for both on the same splits).
    """
    try:
        check_memory("EASE", n_items, torch.float32, 3, memory_budget_gb)
    except MemoryBudgetError:
        return SparseEASE
    return EASE
