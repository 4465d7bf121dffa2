"""SparseEASE: EASE with sparse item-item weights, so its memory follows ``density``, not items².

EASE (Steck, WWW 2019) has the closed form B = I − P·diag(1/diag P), P = (G + λI)⁻¹, G = XᵀX.
Column j of that B is the ridge regression of item j on all other items:
B₋ⱼ,ⱼ = (G₋ⱼ,₋ⱼ + λI)⁻¹ G₋ⱼ,ⱼ with Bⱼⱼ = 0, which is how the zero-diagonal constraint enters.

Here column j may use only ``k`` input items, its neighbourhood Nⱼ (after Steck's sparse
approximation, "Markov Random Fields for Collaborative Filtering", NeurIPS 2019): the k items
with the largest cosine co-occurrence with j. Each column is then the small ridge system
(G_NN + λI)·b = G_Nj with the exact Gram entries, solved in batches of items by Cholesky.
With every other item as a neighbour (``density=1``) this is EASE exactly.

Memory: the Gram matrix is built and kept sparse (``X.T @ X`` in scipy); only blocks of
``batch × (k+1)²`` Gram entries are gathered dense, and B holds ``n_items × k`` weights,
k ≈ density·n_items. Scores are ``x·B`` as a sparse product (scipy on the CPU, torch sparse
on CUDA). The CHOLMOD route, a sparse LDLᵀ of the whole Gram, is the SANSA peer
(:class:`~recae.models.SANSA`, an optional extra); ``solver="cholmod"`` says so.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ..data.batching import densify_rows
from ..data.validate import check_choice
from ..exceptions import DataError, MemoryBudgetError
from .base import Recommender
from .closed_form import check_dtype_l2, is_real

logger = logging.getLogger(__name__)

__all__ = ["SparseEASE", "estimate_bytes", "neighbours_per_item"]

#: Bounds on the Gram entries gathered dense per batch of item systems (batch × (k+1)²). Each batch
#: reads the Gram rows it needs once, so a batch gathers about as many entries as the Gram stores:
#: the rows are read a few times in all, and the batch costs no more memory than the Gram.
MIN_BLOCK_ELEMENTS, MAX_BLOCK_ELEMENTS = 1 << 20, 1 << 26
#: Gram entries read per gather step (their int64 positions are the largest temporaries).
GATHER_ELEMENTS = 1 << 20
#: Entries per batched Cholesky call (torch factorizes a copy of its input); 2**22 is 16 MiB in float32.
FACTOR_ELEMENTS = 1 << 22
#: Size of the reused buffer that Gram rows are scattered into (rows × n_items); 2**22 is 16 MiB in float32.
BUFFER_ELEMENTS = 1 << 22
#: Largest block of XᵀX (rows × n_items) computed before the memory check sees its nonzeros.
GRAM_BLOCK_ENTRIES = 1 << 24
#: Gram entries scored per block of rows while choosing neighbourhoods.
ROW_BLOCK_NNZ = 1 << 20
#: Neighbourhood systems smaller than this are factorized with one thread each (no barrier spin-waits).
SMALL_SYSTEM = 1024
CHOLMOD_INSTALL = "apt-get install libsuitesparse-dev && pip install scikit-sparse==0.4.16"


def neighbours_per_item(n_items: int, density: float) -> int:
    """k, the input items of each weight column: ``density`` of the n_items² weights, at most n_items − 1."""
    return int(min(max(n_items - 1, 0), max(1, round(density * n_items))))


def _block_items(n_items: int, k: int, gram_nnz: int) -> int:
    """Items whose (k+1)² systems are gathered and solved together."""
    elements = min(max(gram_nnz, MIN_BLOCK_ELEMENTS), MAX_BLOCK_ELEMENTS)
    return int(max(1, min(n_items, elements // (k + 1) ** 2)))


def estimate_bytes(n_items: int, density: float, gram_nnz: int, dtype: str = "float32") -> dict[str, int]:
    """Peak memory of a fit, by part: ``gram`` (the sparse Gram XᵀX with ``gram_nnz`` nonzeros, twice:
    its blocks and the stacked matrix), ``solves`` (one batch of dense neighbourhood systems, the
    factorization's copies, the row buffer and the index temporaries) and ``weights`` (B while it
    is assembled). ``total`` is their sum. Grows linearly in n_items at a fixed k, not in items²."""
    nbytes = 8 if dtype == "float64" else 4
    idx = 4 if gram_nnz < 2**31 else 8
    k = neighbours_per_item(n_items, density)
    K = k + 1
    gram = 2 * (gram_nnz * (nbytes + idx) + (n_items + 1) * idx)
    batch = _block_items(n_items, k, gram_nnz)
    factor = 2 * min(batch, max(1, FACTOR_ELEMENTS // max(k, 1) ** 2)) * k * k  # input copy and factor
    buffer = max(1, min((n_items + 1) // 2, BUFFER_ELEMENTS // max(n_items, 1))) * n_items
    solves = (batch * K * K + factor + buffer) * nbytes + 3 * 8 * min(GATHER_ELEMENTS, batch * K * K) \
        + 64 * min(ROW_BLOCK_NNZ, gram_nnz)  # gather positions; scoring of candidate neighbours
    weights = n_items * k * (2 * 8 + 2 * (4 + 8))  # neighbour ids, then values and ids as CSC and CSR
    return {"gram": gram, "solves": solves, "weights": weights, "total": gram + solves + weights}


def _gib(nbytes: float) -> str:
    gib = nbytes / 2**30
    return f"{gib:.1f}" if gib >= 1 else f"{gib:.3g}"


def _sparse_gram(X: sp.csr_matrix, dtype, check) -> sp.csr_matrix:
    """XᵀX as a CSR matrix with sorted indices, built in blocks of rows of at most GRAM_BLOCK_ENTRIES.

    ``check(nnz)`` sees the running count of nonzeros after each block, so an over-budget Gram is
    refused after one bounded block, before the rest is allocated.
    """
    n = X.shape[1]
    Xr = X.astype(dtype)
    Xc = Xr.tocsc()
    step = max(1, GRAM_BLOCK_ENTRIES // max(n, 1))
    blocks, nnz = [], 0
    for c0 in range(0, n, step):
        block = (Xc[:, c0:c0 + step].T @ Xr).tocsr()  # rows c0.. of XᵀX
        nnz += block.nnz
        check(nnz, c0 + step >= n)
        blocks.append(block)
    del Xr, Xc
    G = blocks[0] if len(blocks) == 1 else sp.vstack(blocks, format="csr")
    G.sort_indices()
    return G


def _choose_neighbours(G: sp.csr_matrix, k: int) -> np.ndarray:
    """``(n_items, k)`` sorted neighbour ids: per item j the k others with the largest cosine Gⱼᵢ/√(GⱼⱼGᵢᵢ).

    Items that co-occur with fewer than k others are filled up with the most popular remaining
    items (so density 1 gives every other item, the exact EASE). Works on the sparse rows in
    blocks; stable sorts break ties by item id, so the choice is deterministic.
    """
    n = G.shape[0]
    diag = G.diagonal().astype(np.float64)
    inv_root = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    popular = np.argsort(-diag, kind="stable")
    out = np.empty((n, k), dtype=np.int64)
    lengths = np.diff(G.indptr)
    start = 0
    while start < n:  # blocks of rows holding about ROW_BLOCK_NNZ Gram entries
        stop = int(np.searchsorted(G.indptr, G.indptr[start] + ROW_BLOCK_NNZ, side="right")) - 1
        stop = min(n, max(start + 1, stop))
        lo, hi = G.indptr[start], G.indptr[stop]
        cols = G.indices[lo:hi].astype(np.int64)
        rows = np.repeat(np.arange(start, stop), lengths[start:stop])
        cosine = G.data[lo:hi].astype(np.float64) * inv_root[cols] * inv_root[rows]  # in (0, 1] where stored
        keep = (cols != rows) & (cosine > 0)
        rows, cols, cosine = rows[keep], cols[keep], cosine[keep]
        # one sort key: by row, then best cosine first; the stable sort keeps column order on ties
        order = np.argsort((rows - start) * 4.0 + (2.0 - cosine), kind="stable")
        rows, cols = rows[order], cols[order]
        first = np.searchsorted(rows, np.arange(start, stop))
        rank = np.arange(len(rows)) - first[rows - start]
        take = rank < k
        block = np.full((stop - start, k), -1, dtype=np.int64)
        block[rows[take] - start, rank[take]] = cols[take]
        for r in np.flatnonzero(block[:, -1] < 0):  # only items with fewer than k co-occurring items
            have = block[r][block[r] >= 0]
            # the most popular items that are neither the item nor its neighbours: a prefix of
            # k + |have| + 1 popular items always holds enough of them (O(k) per item, not O(items))
            cand = popular[: k + len(have) + 1]
            cand = cand[~np.isin(cand, have) & (cand != start + r)]
            block[r, len(have):] = cand[: k - len(have)]
        out[start:stop] = np.sort(block, axis=1)
        start = stop
    return out


def _gather_systems(G: sp.csr_matrix, ids: np.ndarray, dtype) -> np.ndarray:
    """Dense ``G[ids[a]][:, ids[a]]`` for every row a of ``ids`` (b × K): the exact Gram entries.

    The Gram rows the systems read are scattered a bounded number at a time into one reused zero
    buffer of rows × n_items (never all rows), read, and zeroed again: the cost is their stored
    entries plus b·K² reads, not rows × n_items.
    """
    n = G.shape[0]
    b, K = ids.shape
    union, local = np.unique(ids, return_inverse=True)
    local = local.ravel()
    order = np.argsort(local, kind="stable")  # system entries (a, p) grouped by the Gram row they read
    step = max(1, min((n + 1) // 2, len(union), BUFFER_ELEMENTS // n))
    bounds = np.searchsorted(local[order], np.arange(0, len(union) + step, step))
    buffer = np.zeros(step * n, dtype=dtype)  # flat: 1-D fancy indexing is many times faster than 2-D
    out = np.zeros((b * K, K), dtype=dtype)
    for chunk, r0 in enumerate(range(0, len(union), step)):
        rows = G[union[r0:r0 + step]]
        at = np.repeat(np.arange(rows.shape[0], dtype=np.int64) * n, np.diff(rows.indptr)) + rows.indices
        buffer[at] = rows.data
        piece = max(1, GATHER_ELEMENTS // K)
        for e0 in range(bounds[chunk], bounds[chunk + 1], piece):
            entries = order[e0:min(e0 + piece, bounds[chunk + 1])]
            out[entries] = buffer[((local[entries] - r0) * n)[:, None] + ids[entries // K]]
        buffer[at] = 0
    return out.reshape(b, K, K)


class _Threads:
    """Run with ``n`` torch threads: batched small factorizations only lose time to thread barriers."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def _solve_columns(G: sp.csr_matrix, N: np.ndarray, l2: float, dtype: torch.dtype) -> np.ndarray:
    """Weights ``(n_items, k)``: row j solves (G_NN + λI)·b = G_Nj over j's neighbours N = N[j]."""
    n, k = N.shape
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    out = np.empty((n, k), dtype=np.float32)
    step = _block_items(n, k, G.nnz)
    eps = torch.finfo(dtype).eps
    for start in range(0, n, step):
        stop = min(start + step, n)
        ids = np.concatenate([N[start:stop], np.arange(start, stop)[:, None]], axis=1)
        D = torch.from_numpy(_gather_systems(G, ids, np_dtype))
        D.diagonal(dim1=-2, dim2=-1)[:, :k].add_(l2)
        sub = max(1, FACTOR_ELEMENTS // k ** 2)  # torch factorizes a copy: a few systems at a time
        for s0 in range(0, stop - start, sub):
            A, rhs = D[s0:s0 + sub, :k, :k], D[s0:s0 + sub, :k, k:]
            with _Threads(1 if k < SMALL_SYSTEM else torch.get_num_threads()):
                L, info = torch.linalg.cholesky_ex(A)
                solution = torch.cholesky_solve(rhs, L)[..., 0]
            scale = A.diagonal(dim1=-2, dim2=-1).amax(dim=-1)
            pivots = (L.diagonal(dim1=-2, dim2=-1) ** 2).amin(dim=-1)
            bad = (info != 0) | ~(pivots > 64 * math.sqrt(k) * eps * scale)
            if bool(bad.any()):
                j = start + s0 + int(torch.nonzero(bad)[0, 0])
                raise DataError(
                    f"the neighbourhood system of item {j} (Gram XᵀX + {l2}·I on its {k} neighbours) is singular; "
                    "use a larger l2" + (" or dtype='float64'" if dtype == torch.float32 else "")
                    + " (items with identical or no interactions make XᵀX singular)")
            out[start + s0:start + s0 + len(solution)] = solution.numpy()
    return out


class SparseEASE(Recommender):
    """EASE with ``density × n_items²`` nonzero item-item weights (closed form, no training loop).

    Parameters
    ----------
    l2 : float, default 500.0
        L2 penalty λ on the weights, as in :class:`~recae.models.ease.EASE`.
    density : float in (0, 1], default 0.05
        Share of the n_items² weights that may be nonzero: each item's score is predicted from
        its k = round(density · n_items) nearest items by cosine co-occurrence (at most all others;
        1.0 is dense EASE, at the cost of one (n_items−1)² system per item).
    solver : {"auto", "scipy"}, default "auto"
        "scipy": sparse Gram in scipy and batched neighbourhood solves in torch; "auto" is "scipy".
        The CHOLMOD route (a sparse LDLᵀ of the whole Gram) is :class:`~recae.models.SANSA`.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the Gram matrix and the solves; the weights are stored in float32.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
        Where scores are computed; fitting runs on the CPU.
    memory_budget_gb : float, default 8.0
        Refuse to fit when the estimated peak memory (:func:`estimate_bytes`) exceeds this.

    Attributes
    ----------
    weights_ : scipy.sparse.csr_matrix of shape (n_items, n_items)
        B with a zero diagonal: row i holds the weights of input item i, column j is item j's regression.
    neighbours_ : int
        k, the nonzero weights per column.
    """

    additive_scores = True  # scores are x·B with a sparse B: linear in the history, so explain() is exact

    def __init__(self, l2=500.0, density=0.05, solver="auto", dtype="float32", device="auto", memory_budget_gb=8.0):
        self.l2 = l2
        self.density = density
        self.solver = solver
        self.dtype = dtype
        self.device = device
        self.memory_budget_gb = memory_budget_gb

    # ------------------------------------------------------------------ fitting
    def _check(self) -> torch.dtype:
        dtype = check_dtype_l2(self.dtype, self.l2)
        if not is_real(self.density) or not 0 < self.density <= 1:
            raise DataError(f"density must be a number in (0, 1] (the share of nonzero item-item weights); "
                            f"got {self.density!r}")
        if self.solver == "cholmod":  # the factorized route is another model, not a solver of this one
            raise DataError("SparseEASE solves its neighbourhood systems with scipy and torch (solver 'auto' or "
                            "'scipy'); the CHOLMOD factorization of EASE is recae.models.SANSA (the sansa "
                            f"package: {CHOLMOD_INSTALL} && pip install sansa==1.1.0)")
        check_choice(self.solver, "solver", ("auto", "scipy"))
        if not is_real(self.memory_budget_gb) or not self.memory_budget_gb > 0:
            raise DataError(f"memory_budget_gb must be a positive number; got {self.memory_budget_gb!r}")
        return dtype

    def _check_memory(self, n_items: int, gram_nnz: int, complete: bool) -> None:
        need = estimate_bytes(n_items, self.density, gram_nnz, self.dtype)
        budget = self.memory_budget_gb * 2**30
        if need["total"] > budget:
            k = neighbours_per_item(n_items, self.density)
            gram = "estimated before any of it is built" if not gram_nnz else \
                f"with {'' if complete else 'at least '}{gram_nnz} nonzeros{'' if complete else ' counted so far'}"
            raise MemoryBudgetError(
                f"SparseEASE on {n_items} items at density={self.density} ({k} neighbours per item) needs about "
                f"{_gib(need['total'])} GiB (sparse Gram {gram}: "
                f"{_gib(need['gram'])} GiB, neighbourhood solves: {_gib(need['solves'])} GiB, weights: "
                f"{_gib(need['weights'])} GiB) but memory_budget_gb={self.memory_budget_gb} ({_gib(budget)} GiB); "
                "raise memory_budget_gb, lower density, or drop rare items with Interactions.filter(min_item=...)")

    def _check_settings(self) -> None:
        self._check()

    def _fit(self, X, valid=None):
        dtype = self._check()
        n = X.shape[1]
        self._check_memory(n, 0, complete=False)  # the weights and solves alone, before any Gram block
        G = _sparse_gram(X, np.float64 if dtype == torch.float64 else np.float32,
                         lambda nnz, complete: self._check_memory(n, nnz, complete))
        k = neighbours_per_item(n, self.density)
        logger.info("SparseEASE: %d items, Gram %d nonzeros, %d neighbours per item", n, G.nnz, k)
        if k == 0:  # a single item: nothing to predict it from
            W = sp.csr_matrix((n, n), dtype=np.float32)
        else:
            N = _choose_neighbours(G, k)
            values = _solve_columns(G, N, float(self.l2), dtype)
            del G
            W = sp.csc_matrix((values.ravel(), N.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n)).tocsr()
        self._adopt_weights(W)

    def _adopt_weights(self, W: sp.csr_matrix) -> None:
        W.sort_indices()
        self.weights_ = W
        self.neighbours_ = int(W.nnz // max(W.shape[1], 1))
        if self.device_.type != "cpu":  # torch sparse Bᵀ for products on the device
            Wt = W.T.tocsr()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
                self.weights_t_ = torch.sparse_csr_tensor(
                    torch.as_tensor(Wt.indptr.astype(np.int64)), torch.as_tensor(Wt.indices.astype(np.int64)),
                    torch.as_tensor(Wt.data.astype(np.float32)), size=Wt.shape, device=self.device_,
                    check_invariants=False)

    # ------------------------------------------------------------------ scoring
    def score_rows(self, X):
        if self.device_.type == "cpu":
            return torch.from_numpy((X.astype(np.float32) @ self.weights_).toarray())
        x = densify_rows(X, self.device_)
        return (self.weights_t_ @ x.T.contiguous()).T.contiguous()

    def similarity_rows(self, cols):
        """Row i of B for each queried item i: the scores of a one-item history.

        An item no other item took as a neighbour has an empty row (its one-item history scores
        nothing); it gets column i instead, its own neighbourhood: the items that predict it.
        """
        cols = np.asarray(cols)
        rows = self.weights_[cols].toarray()
        empty = np.flatnonzero(np.diff(self.weights_.indptr)[cols] == 0)
        if len(empty):
            rows[empty] = self.weights_[:, cols[empty]].T.toarray()
        return torch.from_numpy(rows).to(self.device_)

    # ------------------------------------------------------------------ state
    def get_state(self):
        W = self.weights_
        return {"weights.indptr": torch.as_tensor(W.indptr.astype(np.int64)),
                "weights.indices": torch.as_tensor(W.indices.astype(np.int64)),
                "weights.data": torch.as_tensor(W.data.astype(np.float32))}

    def set_state(self, tensors):
        n = self.n_items_
        indptr = tensors["weights.indptr"].cpu().numpy()
        indices = tensors["weights.indices"].cpu().numpy()
        data = tensors["weights.data"].cpu().numpy().astype(np.float32)
        if indptr.shape != (n + 1,) or indptr[0] != 0 or indptr[-1] != len(indices) or len(data) != len(indices) \
                or np.any(np.diff(indptr) < 0) or (len(indices) and not 0 <= indices.min() <= indices.max() < n):
            raise ValueError(f"weights (indptr {indptr.shape}, {len(indices)} indices, {len(data)} values) "
                             f"are no CSR matrix of shape ({n}, {n})")
        self._adopt_weights(sp.csr_matrix((data, indices, indptr), shape=(n, n)))
