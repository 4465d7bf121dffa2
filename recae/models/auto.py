"""The rule behind ``recae fit --model auto``: dense EASE where it fits, the sparse one where it does not."""

from __future__ import annotations

from ..exceptions import MemoryBudgetError
from .closed_form import check_dtype_l2, check_memory
from .ease import EASE
from .sparse_ease import SparseEASE


#: Neighbours per item of the SparseEASE that ``auto`` picks: ~200 (density 0.01 at 20,108 items) scored
#: 0.991 × dense EASE on the ML-20M-shaped log in 84 CPU s (benchmarks/results/peers_ml20m_shape.md);
#: a fixed k keeps the weights' memory and the solves' cost linear in the catalogue.
AUTO_NEIGHBOURS = 200


def auto_linear(n_items: int, memory_budget_gb: float = 8.0, dtype: str = "float32") -> tuple[type, dict]:
    """``(EASE, {})`` when its three items × items matrices (of ``dtype``) fit ``memory_budget_gb``, else
    ``(SparseEASE, {"density": ...})`` with :data:`AUTO_NEIGHBOURS` neighbours per item (fewer
    where SparseEASE's default density, 0.05, gives fewer: catalogues under 4,000 items).

    Dense EASE is exact and, below the budget, fast; past it SparseEASE keeps EASE's closed form
    with memory set by its density. Its default density (0.05) grows the weights as items²
    (12 GiB at 80k items) and the solves as items · k³, so ``auto`` fixes k instead.
    """
    try:
        check_memory("EASE", n_items, check_dtype_l2(dtype, 0.0), 3, memory_budget_gb)
    except MemoryBudgetError:
        return SparseEASE, {"density": min(SparseEASE().density, AUTO_NEIGHBOURS / n_items)}
    return EASE, {}
