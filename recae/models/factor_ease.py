"""FactorEASE: a factored linear autoencoder with a zero diagonal, trained by minibatches (ELSA-like).

After Vančura, Alves, Kasalický, Kordík, "Scalable Linear Shallow Autoencoder for Collaborative
Filtering" (ELSA, RecSys 2022). One item matrix A (items × rank) with unit-norm rows gives the
item-item weights B = A·Aᵀ − I: a user's scores are x·A·Aᵀ − x. The unit rows put ones on the
diagonal of A·Aᵀ, so diag(B) = 0 by construction (EASE's constraint) and memory is O(items·rank)
instead of EASE's items². A is the row-normalised raw parameter W (Aᵢ = Wᵢ / ‖Wᵢ‖) in every
forward pass, so the constraint holds exactly whatever the optimizer does to W.

The loss (the paper's normalised squared error) of a user row x with prediction x̂ = x·A·Aᵀ − x is
‖x̂/‖x̂‖ − x/‖x‖‖² = 2 − 2·cos(x̂, x), averaged over the batch's users (the reference code averages
over users × items, i.e. divides this by the catalogue size as well; with Adam only the scale of
the gradient against Adam's eps changes). Both terms of the cosine are exact without forming x̂:
with h = x·A (from x's nonzeros when the batch is sparse),

    x̂·x = ‖h‖² − ‖x‖²,    ‖x̂‖² = h·(AᵀA)·hᵀ − 2‖h‖² + ‖x‖²,

so ``negatives=None`` trains on the exact loss at O(nnz·r + items·r²) per batch and never holds
a batch × items block of predictions, at any catalogue size. ``negatives`` (a count, or a share
of the catalogue) replaces the AᵀA term by a sample; see :meth:`FactorEASE._sampled_norm2`.

Training reads batches as coordinates (:class:`~recae.data.batching.SparseRows`, memory
O(nnz)), not as the shared loader's dense batch × items blocks. What a step then costs is set by
the catalogue, not by the batch: the Gram AᵀA and its backward (:class:`Gram`, 4·items·r²
flops), the row normalisation (:class:`UnitRows`) and the fused Adam update, O(items·r) each.
An epoch is (users / batch_size) such steps, so large catalogues want large batches.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .. import distributed
from ..data.batching import SparseRowLoader, SparseRows, csr_coords, densify_rows
from ..data.validate import check_real
from ..exceptions import DataError, MemoryBudgetError
from .factor_parts import FactorLayer, Gram, ItemFactors, MinusHistory
from .neural import NeuralRecommender
from .params import store_params
from .trained import OPTIMIZERS


def _gib(nbytes: float) -> str:
    gib = nbytes / 2**30
    return f"{gib:.1f}" if gib >= 1 else f"{gib:.3g}"


class FactorEASE(NeuralRecommender):
    """Factored EASE: scores x·A·Aᵀ − x with unit-norm item factors A, trained by minibatches.

    Parameters
    ----------
    rank : int, default 256
        Columns r of A; at most the number of items. Memory is O(items · rank); the exact loss
        costs O(items · rank²) per batch.
    negatives : None, float in (0, 1) or int, default None
        None: the exact loss (see the module docstring; cost per batch O(items · rank²), no
        batch × items block). A count (or share of the catalogue) of items drawn uniformly per
        batch instead estimates the off-history part of ‖x̂‖² (see :meth:`_sampled_norm2`):
        O(batch · negatives · rank) per batch, for catalogues where items · rank² per step is
        too slow. The sampled loss is a biased (plug-in) estimate of the exact one.
    epochs : int, default 50
    batch_size : int, default 512
        Users per update. The exact loss's cost per step does not grow with it.
    lr : float, default 0.01
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default "adam"
    weight_decay, l1 : float, default 0.0
        Penalties on the raw W. A's rows are W's rows normalised, so they only shrink W's scale
        (which raises the effective step size); they are there for the shared interface.
    patience : int or None, default 5
        Early stopping on ``valid_metric`` (needs ``fit(valid=...)``).
    valid_metric : str, default "ndcg@100"
    amp : {"auto", True, False}, default "auto"
        bfloat16 autocast on CUDA for the sampled negatives' scores; the exact loss always runs
        in float32 (its ‖x̂‖² is a difference of large terms that bfloat16 would cancel).
    device, random_state, show_progress
        As in :class:`~recae.models.dae.MultDAE`.
    weight_averaging : float in [0, 1) or None, default None
        As in :class:`~recae.models.vae.MultVAE`.
    memory_budget_gb : float, default 8.0
        Refuse to fit, before allocating anything, when the training copies of the factors exceed
        this many GiB: (3 + optimizer moments + 1 with ``weight_averaging``) × items × rank × 4 bytes,
        i.e. W, its gradient, the normalised A kept for the backward pass, Adam's two moments (one
        for RMSprop) and the weight average.
    popularity_exponent : float, default 0.0
        γ: item j's scores are multiplied by (1 + nⱼ)^γ, nⱼ its number of training users. Unit-norm
        rows give every item the same scale, so on a long-tail catalogue the many items seen once
        or twice, whose directions the data barely fixes, crowd the top of the ranking; γ > 0
        shrinks them against items with histories (γ < 0 favours rare items). It acts on the scores
        only: validation during ``fit`` (early stopping) sees it, training's loss does not, and a
        fitted model takes a new value through ``set_params`` without refitting. 0 (the default)
        is best on ML-1M; 0.1–0.3 on the long-tail logs (``benchmarks/results/``).

    Attributes
    ----------
    item_factors_ : torch.Tensor of shape (n_items, rank)
        A, the unit-norm item factors (scores are x·A·Aᵀ − x).

    Notes
    -----
    The defaults were chosen on ML-1M validation (a grid over rank × batch size; the grid, test
    scores against dense EASE, fit times and memory: ``benchmarks/results/factor_ease_ml1m.md``,
    from ``benchmarks/factor_ease_probe.py``). New users fold in exactly: their scores are
    x·A·Aᵀ − x, as for training users. ``similar_items`` ranks the cosine of A's rows (Aᵢ·Aⱼ).
    """

    additive_scores = True  # scores are x·A·Aᵀ − x: linear in the history, so explain() is exact

    def __init__(self, rank=256, negatives=None, epochs=50, batch_size=512, lr=0.01, optimizer="adam",
                 weight_decay=0.0, l1=0.0, patience=5, valid_metric="ndcg@100", amp="auto", device="auto",
                 random_state=0, show_progress=None, weight_averaging=None, memory_budget_gb=8.0,
                 popularity_exponent=0.0):
        store_params(self, locals())

    #: The memory budget and the scores' popularity exponent leave training as it is, so a resumed
    #: run may differ in them.
    resumable = NeuralRecommender.resumable + ("memory_budget_gb", "popularity_exponent")
    after_fit = NeuralRecommender.after_fit + ("popularity_exponent",)  # read at scoring time

    # ------------------------------------------------------------------ checks
    def _check_settings(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, Integral) or self.rank < 1:
            raise DataError(f"rank must be a positive integer; got {self.rank!r}")
        self._gamma()
        super()._check_settings()

    def _prepare(self, X) -> None:
        n_items = X.shape[1]
        if self.rank > n_items:
            raise DataError(f"rank must be at most the number of items ({n_items}); got {self.rank}")
        self._n_negatives()  # checked before anything is allocated
        self._check_memory(n_items)

    def _n_negatives(self) -> int | None:
        """Items drawn per batch (None: the exact loss)."""
        value = self.negatives
        if value is None:
            return None
        bad = DataError(f"negatives must be None, a share in (0, 1) or a count >= 1; got {value!r}")
        if isinstance(value, bool) or not isinstance(value, Real):
            raise bad
        if not isinstance(value, Integral) and 0 < value < 1:
            return max(1, math.ceil(value * self.n_items_))
        if isinstance(value, Integral) and value >= 1:
            return min(int(value), self.n_items_)
        if value >= 1:  # a float: 1.0 may mean "all of them", which it never did (it drew one item)
            raise DataError(f"negatives as a float is a share of the items, in (0, 1); got {value!r}. Pass a count "
                            f"as an int (negatives={int(value)}), or None for the exact loss over every item")
        raise bad

    def _check_memory(self, n_items: int) -> None:
        """W, its gradient, A (kept for the backward pass) and the optimizer's state: float32 items × rank each."""
        budget = self.memory_budget_gb
        if isinstance(budget, bool) or not isinstance(budget, Real) or not budget > 0:
            raise DataError(f"memory_budget_gb must be a positive number; got {budget!r}")
        averaged = self.weight_averaging is not None  # one more copy: the running average of W
        copies = 3 + {"adam": 2, "adamw": 2, "rmsprop": 1}.get(self.optimizer, 0) + averaged
        need = copies * n_items * self.rank * 4
        if need > budget * 2**30:
            raise MemoryBudgetError(
                f"FactorEASE with rank {self.rank} on {n_items} items needs about {_gib(need)} GiB "
                f"({copies} × {n_items} × {self.rank} × 4 bytes: factors, gradient, normalised factors"
                f"{', weight average' if averaged else ''} and {self.optimizer} state) but memory_budget_gb={budget} ({_gib(budget * 2**30)} GiB); "
                "lower the rank, raise the budget, or drop rare items with Interactions.filter(min_item=...)")

    # ------------------------------------------------------------------ the model
    def _build(self, n_items):
        return ItemFactors(n_items, int(self.rank))

    def _decoder_input(self, x):
        A = self.module_.factors()
        return x @ A, FactorLayer(A)

    #: Batches denser than this share of nonzeros compute h = x·A as a dense product, sparser ones
    #: from their nonzeros (embedding_bag); on one CPU thread the dense product wins above ~1%.
    dense_share = 1 / 64

    @staticmethod
    def _bag(A: torch.Tensor, cols: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor, n_rows: int):
        """h = x·A from x's nonzeros (``rows`` sorted) without touching A's other rows' products."""
        counts = torch.bincount(rows, minlength=n_rows)
        return nn.functional.embedding_bag(cols, A, torch.cumsum(counts, 0) - counts, mode="sum",
                                           per_sample_weights=vals)

    def _make_optimizer(self, params):
        fused = {"fused": True} if self.optimizer in ("adam", "adamw") else {}  # one kernel: several times faster
        return OPTIMIZERS[self.optimizer](params, lr=self.lr, weight_decay=self.weight_decay, **fused)

    def _train(self, shape, make_spec, **fit_kwargs):
        # batches come as coordinates (SparseRows): no batch × items block at any catalogue size
        def sparse_spec(trainer):
            spec = make_spec(trainer)
            return dataclasses.replace(spec, loader=SparseRowLoader(spec.loader))

        super()._train(shape, sparse_spec, **fit_kwargs)

    @staticmethod
    def _coords(x) -> SparseRows:
        """A batch as coordinates: SparseRows as they come, or a dense block's nonzeros (row-major)."""
        if isinstance(x, SparseRows):
            return x
        r, c = x.nonzero(as_tuple=True)
        return SparseRows(r, c, x[r, c].float(), tuple(x.shape))

    def _loss(self, state, x, rows):
        x = self._coords(x)
        with torch.autocast(x.vals.device.type, enabled=False):  # float32: ‖x̂‖² is a difference of large terms
            r, c, v = x.rows, x.cols, x.vals.float()
            n, n_items = x.shape
            xx = torch.zeros(n, device=v.device).index_add(0, r, v * v)  # ‖x‖²
            if self._n_negatives() is None:
                A = self.module_.factors()
                # dense batches (small catalogues) multiply faster as a block than through embedding_bag
                h = x.to_dense() @ A if len(r) >= self.dense_share * n * n_items else self._bag(A, c, r, v, n)
                hh = (h * h).sum(dim=1)
                pp = ((h @ Gram.apply(A)) * h).sum(dim=1) - 2 * hh + xx  # ‖x̂‖²: an r × r Gram, no batch × items
            else:
                hh, pp = self._sampled_norm2(x.shape, r, c, v, state.noise)
            return self._nmse(hh - xx, pp, xx)  # x̂·x = ‖h‖² − ‖x‖²

    @staticmethod
    def _nmse(px, pp, xx) -> torch.Tensor:
        """Mean over rows of ‖x̂/‖x̂‖ − x/‖x‖‖² = 2 − 2·(x̂·x)/(‖x̂‖·‖x‖); an empty row counts 0."""
        cos = px / (pp.clamp_min(1e-12).sqrt() * xx.clamp_min(1e-12).sqrt())
        return torch.where(xx > 0, 2 - 2 * cos, torch.zeros_like(cos)).mean()

    def _sampled_norm2(self, shape, r, c, v, generator):
        """‖h‖² and a sampled estimate of ‖x̂‖² (x̂·x = ‖h‖² − ‖x‖² stays exact).

        ‖x̂‖² splits into the user's own items (x̂ᵢ = h·Aᵢ − xᵢ, exact per nonzero) and the rest,
        Σ_{j ∉ x} (h·Aⱼ)², estimated from the distinct items S of ``negatives`` uniform draws shared
        by the batch: those not in the history, S∖x, each weighted by (I − |x|) / |S∖x|. Given
        |S∖x| they are a uniform sample of the unseen items, so the estimate of ‖x̂‖² is unbiased;
        the loss, a ratio of it, is a plug-in estimate: consistent as the sample grows, with a bias
        of order 1/|S∖x| (by Jensen the |cosine| comes out too large on average, so for users with a
        positive cosine the loss is under-estimated). Work: O((nnz + B·|S|)·rank) per batch, but
        the optimizer still updates all of W (O(items·rank)).
        """
        gen = generator.generator if isinstance(generator, distributed.BatchSlice) else generator
        n, n_items = shape
        neg = torch.randint(n_items, (self._n_negatives(),), generator=gen, device=gen.device).to(v.device).unique()
        items, where = c.unique(return_inverse=True)
        A_pos = self.module_.factors(items)
        h = self._bag(A_pos, where, r, v, n)
        # x̂ on the history's items; gathered by embedding, whose backward sums repeated rows in a fixed
        # order (indexing's did not on several CPU threads: two fits with one seed differed by ~1e-6)
        own_pred = (nn.functional.embedding(r, h) * nn.functional.embedding(where, A_pos)).sum(dim=1) - v
        pp_own = torch.zeros(n, device=v.device).index_add(0, r, own_pred * own_pred)
        with torch.autocast(v.device.type, dtype=torch.bfloat16, enabled=self._amp_enabled()):
            q = h @ self.module_.factors(neg).T
        # a sampled item in the history is counted on the exact side (neg is sorted: find c in it)
        at = torch.searchsorted(neg, c).clamp_max(len(neg) - 1)
        hit = neg[at] == c
        own = torch.zeros(n, len(neg), dtype=torch.bool, device=v.device)
        own[r[hit], at[hit]] = True
        n_left = (len(neg) - own.sum(dim=1)).clamp_min(1)
        scale = (n_items - torch.bincount(r, minlength=n)).clamp_min(0) / n_left
        pp = pp_own + scale * q.float().pow(2).masked_fill(own, 0.0).sum(dim=1)
        return (h * h).sum(dim=1), pp

    # ------------------------------------------------------------------ scoring
    def _gamma(self) -> float:
        return check_real(self.popularity_exponent, "popularity_exponent", -2.0, 2.0)

    def _item_weights(self) -> torch.Tensor | None:
        """(1 + nⱼ)^γ per item from the training matrix (None at γ = 0), kept until either changes."""
        gamma = self._gamma()
        if gamma == 0:
            return None
        cached = getattr(self, "_weights_cache", None)
        if cached is None or cached[0] != gamma or cached[1] is not self.user_items_:
            counts = self.item_counts().astype(np.float64)
            w = torch.as_tensor((1.0 + counts) ** gamma, dtype=torch.float32, device=self.device_)
            self._weights_cache = cached = (gamma, self.user_items_, w)
        return cached[2]

    def top_k(self, *args, **kwargs):
        # every row block of one ranking multiplies by the same A: normalising W again for each block of
        # 128 users cost a fifth of the ranking on 2M items. A ranking that finds none (another thread's
        # ended first) normalises per block, with the same scores.
        with torch.no_grad():
            self._ranking_factors = self.module_.factors()
        try:
            return super().top_k(*args, **kwargs)
        finally:
            self._ranking_factors = None

    def _factors(self) -> torch.Tensor:
        """A for scoring: the one kept for the ranking in progress, else normalised now."""
        kept = getattr(self, "_ranking_factors", None)
        return self.module_.factors() if kept is None else kept

    @torch.no_grad()
    def score_rows(self, X):
        """Exactly (x·A·Aᵀ − x)·diag(w) (float32) for history rows X; w = 1 at γ = 0."""
        self.module_.eval()
        A = self._factors()
        s = self._hidden(X, A) @ A.T - densify_rows(X, self.device_)
        w = self._item_weights()
        return s if w is None else s.mul_(w)

    @torch.no_grad()
    def factored_rows(self, X):
        """The scores kept factored, ranked by item chunks (each chunk subtracts its part of x)."""
        self.module_.eval()
        A = self._factors()
        hidden = self._hidden(X, A)
        return MinusHistory(hidden, FactorLayer(A), X, self._item_weights())

    def _hidden(self, X: sp.csr_matrix, A: torch.Tensor) -> torch.Tensor:
        """h = x·A from CSR rows without densifying them (no rows × items block)."""
        X = sp.csr_matrix(X)
        r, c = csr_coords(X, self.device_)
        return self._bag(A, c, r, torch.as_tensor(X.data.astype(np.float32), device=self.device_), X.shape[0])

    @torch.no_grad()
    def similarity_rows(self, cols):
        """Cosine of the items ``cols`` to every item: Aᵢ·Aⱼ (A's rows have unit norm)."""
        self.module_.eval()
        A = self._factors()
        return A[torch.as_tensor(np.asarray(cols, dtype=np.int64), device=self.device_)] @ A.T

    @property
    def item_factors_(self) -> torch.Tensor:
        """A (items × rank, unit-norm rows), detached."""
        self._check_fitted()
        with torch.no_grad():
            return self.module_.factors().detach()
