"""Synthetic interaction logs with planted, learnable structure.

The generative story:

* ``n_clusters`` taste centres in ``n_factors`` dimensions; every user belongs to one
  cluster and has a latent vector = centre + Gaussian noise. Items have Gaussian vectors.
  The user-item affinity is ``signal`` × (scaled dot product), of standard deviation about ``signal``.
* Items have Zipf-like popularity ``p_j ∝ rank_j ** -popularity_exponent`` (ranks randomly
  permuted over the item ids).
* Each user's number of interactions is ``min_per_user`` plus a heavy-tailed (log-normal)
  share of the remaining budget, capped at ``n_items``; the totals add up to
  ``n_interactions`` exactly.
* Each user's items are drawn without replacement with probability ∝ exp(affinity) ×
  popularity, by the Gumbel-top-k trick (the top-k of ``log w + Gumbel noise`` is a sample
  without replacement from ``w``).

Users are processed in chunks (about ``2**23`` user-item cells at a time), so memory stays
bounded for ML-20M-sized logs; the dense users×items matrix is never built.

``popularity="longtail"`` is the sparse variant for large catalogues (cost ∝ ``n_interactions``):
users and items each belong to one of ``n_clusters`` taste groups; every item gets one interaction
(its user drawn ∝ activity, × ``exp(signal)`` within the item's group), then each user's other
items are drawn without replacement ∝ popularity × ``exp(signal)`` within the user's group: i.i.d.
draws in rounds, repeats dropped (an i.i.d. stream's first distinct draws are such a sample).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..data.validate import check_choice, check_fits_in_memory, check_int, check_real, make_rng
from ..exceptions import DataError

logger = logging.getLogger(__name__)

# ML-100K's star distribution (cumulative shares of 1, 1-2, 1-3, 1-4 stars).
_STAR_CDF = np.array([0.0611, 0.1748, 0.4463, 0.7880])
_T0 = 946_684_800  # 2000-01-01 UTC
_T1 = 1_420_070_400  # 2015-01-01 UTC
_TINY = np.float32(1e-30)


def _user_counts(rng: np.random.Generator, n_users: int, n_items: int, total: int, minimum: int,
                 sigma: float) -> np.ndarray:
    """Per-user counts: ``minimum`` + heavy-tailed shares, each <= n_items, summing to ``total``."""
    weights = rng.lognormal(mean=0.0, sigma=sigma, size=n_users)
    counts = np.full(n_users, minimum, dtype=np.int64)
    extra = total - counts.sum()
    cap = n_items
    # Water filling: hand out the extra budget proportionally to the weights of users still
    # below the cap, then move any overflow to the others.
    while extra > 0:
        open_ = counts < cap
        w = np.where(open_, weights, 0.0)
        share = extra * w / w.sum()
        add = np.floor(share).astype(np.int64)
        rem = int(extra - add.sum())
        if rem > 0:  # the largest fractional parts get one more
            frac = np.where(open_, share - add, -1.0)
            add[np.argpartition(-frac, rem - 1)[:rem]] += 1
        counts += add
        over = np.maximum(counts - cap, 0)
        counts -= over
        extra = int(over.sum())
    return counts


def top_columns(keys: np.ndarray, k: int) -> np.ndarray:
    """Column indices (r, k) of each row's k largest keys, in no particular order."""
    r, n = keys.shape
    if k >= n:
        return np.broadcast_to(np.arange(n), keys.shape)
    # Partitioning values and thresholding is ~2x faster than argpartition; ties at the
    # threshold (rare with continuous keys) fall back to the exact argpartition.
    thr = np.partition(keys, n - k, axis=1)[:, n - k]
    rows, cols = np.nonzero(keys >= thr[:, None])
    if len(cols) == r * k:  # every row has >= k such entries, so exactly k each
        return cols.reshape(r, k)
    return np.argpartition(keys, n - k, axis=1)[:, n - k:]


_BLOCK = 1 << 22  # draws per block of the long-tail sampler (bounded temporaries)


def _seed_users(rng, counts, cluster, item_cluster, boost):
    """One user per item, drawn ∝ counts × (1 + boost if same group), at most counts[u] items per user."""
    stub_user = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    perm = rng.permutation(len(stub_user))
    order = perm[np.argsort(cluster[stub_user[perm]], kind="stable")]  # stubs by group, shuffled within
    per_group = np.bincount(cluster, weights=counts, minlength=int(item_cluster.max()) + 1).astype(np.int64)
    k = boost * per_group[item_cluster]
    inside = np.flatnonzero(rng.random(len(item_cluster)) < k / (k + len(stub_user)))
    inside = inside[np.argsort(item_cluster[inside], kind="stable")]
    g = item_cluster[inside]
    rank = np.arange(len(inside)) - np.searchsorted(g, g)  # position among the group's inside items
    fits = rank < per_group[g]  # the group's stubs in order, then the others from the free ones
    slot = np.full(len(item_cluster), -1, dtype=np.int64)
    slot[inside[fits]] = (np.cumsum(per_group) - per_group)[g[fits]] + rank[fits]
    taken = np.zeros(len(stub_user), dtype=bool)
    taken[slot[inside[fits]]] = True
    free, rest = np.flatnonzero(~taken), np.flatnonzero(slot < 0)
    slot[rest] = free[rng.choice(len(free), len(rest), replace=False)]
    return stub_user[order[slot]].astype(np.int64)


def _search(cum, t):
    """``np.searchsorted(cum, t, "right")``, querying in sorted order (~3x faster for a large ``cum``)."""
    o = (np.sort((t * 2.0**41 / cum[-1]).astype(np.uint64) << np.uint64(22) | np.arange(len(t), dtype=np.uint64))
         & np.uint64(_BLOCK - 1)).astype(np.int64)  # len(t) <= _BLOCK = 2**22
    pos = np.empty(len(t), dtype=np.int64)
    pos[o] = np.searchsorted(cum, t[o], side="right")
    return pos


def _longtail(rng, counts, cluster, item_cluster, pop, signal, chunk_cells):
    """Sorted int64 keys ``user * n_items + item``: one per item, then successive draws up to ``counts``."""
    n_users, n_items, n_groups = len(counts), len(pop), int(max(cluster.max(), item_cluster.max())) + 1
    boost = np.expm1(min(signal, 100.0))  # an own-group item weighs exp(signal) times more
    owned = np.sort(_seed_users(rng, counts, cluster, item_cluster, boost) * n_items + np.arange(n_items))
    need = counts - np.bincount(owned // n_items, minlength=n_users)
    by_group = np.argsort(item_cluster, kind="stable")
    cum = np.cumsum(pop[by_group])
    mass, size = (np.bincount(item_cluster, weights=w, minlength=n_groups) for w in (pop, None))
    lo, hi = np.cumsum(mass) - mass, np.cumsum(size)
    p_in = boost * mass / (boost * mass + 1.0)  # share of a user's draws from the own-group branch
    factor, active = np.ones(n_users), np.ones(n_users, dtype=bool)
    for _ in range(40):  # rounds of i.i.d. draws; repeats and already owned items are dropped
        users = np.flatnonzero(active & (need > 0))
        if len(users) == 0:
            break
        m = np.ceil(need[users] * factor[users]).astype(np.int64)
        who = np.repeat(users, m)
        keys = np.empty(len(who), dtype=np.int64)
        for b in range(0, len(who), _BLOCK):
            u = who[b:b + _BLOCK]
            g = cluster[u]
            own, x = rng.random(len(u)) < p_in[g], rng.random(len(u))
            pos = _search(cum, np.where(own, lo[g] + x * mass[g], x * cum[-1]))
            pos = np.where(own, np.clip(pos, hi[g] - size[g], hi[g] - 1), np.minimum(pos, n_items - 1))
            keys[b:b + _BLOCK] = u * n_items + by_group[pos]
        keys = keys[owned[np.minimum(np.searchsorted(owned, keys), len(owned) - 1)] != keys]
        new, at = np.unique(keys, return_index=True)  # distinct, sorted by user then item
        got = np.bincount(new // n_items, minlength=n_users)
        if np.any(got > need):  # keep each user's first `need` distinct draws, in draw order
            new = new[np.argsort(at, kind="stable")]
            whose = new // n_items
            new = np.sort(new[np.arange(len(new)) - np.searchsorted(whose, whose) < need[whose]])
            got = np.bincount(new // n_items, minlength=n_users)
        owned = np.sort(np.concatenate([owned, new]), kind="stable")  # merges two sorted runs
        factor[users] = 1.25 * m / np.maximum(got[users], 1)
        active[users] = (16 * got[users] >= m) | (m < 64)  # under 1/16 new in 64+ draws: exact fallback
        need -= got
    users, rows = np.flatnonzero(need), max(1, chunk_cells // n_items)  # exact fallback: Gumbel top-k
    for b in range(0, len(users), rows):
        u = users[b:b + rows]
        keys = np.log(pop).astype(np.float32) + np.float32(signal) * (item_cluster == cluster[u][:, None])
        keys -= np.log(np.maximum(rng.standard_exponential(keys.shape, dtype=np.float32), _TINY))
        mine = owned[np.isin(owned // n_items, u)]
        keys[np.searchsorted(u, mine // n_items), mine % n_items] = -np.inf  # not what the user has
        top = top_columns(keys, int(need[u].max()))
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
        top = (u[:, None] * n_items + top)[np.arange(top.shape[1]) < need[u][:, None]]
        owned = np.sort(np.concatenate([owned, top]))
    return owned


def _timestamps(rng, rows, n_users, nnz, block):
    """Per-entry Unix times: each user is active in a random window between 2000 and 2015."""
    span = _T1 - _T0
    duration = np.minimum(rng.lognormal(np.log(30 * 86_400), 1.5, size=n_users), span)
    start = _T0 + rng.random(n_users) * (span - duration)
    ts = rng.random(nnz)
    for b in range(0, nnz, block):
        r = rows[b:b + block]
        ts[b:b + block] = np.floor(start[r] + ts[b:b + block] * duration[r])
    return ts


def synthetic(n_users: int = 1000, n_items: int = 500, n_interactions: int | None = None, n_factors: int = 8,
              popularity_exponent: float = 1.0, ratings: bool | None = None, timestamps: bool = True,
              random_state: int | None = 0, *, popularity: str = "zipf", n_clusters: int | None = None,
              signal: float | None = None, user_noise: float = 0.5, min_per_user: int = 5,
              activity_sigma: float = 1.0, chunk_cells: int = 1 << 23, return_truth: bool = False):
    """Generate an interaction log with planted cluster structure and power-law popularity.

    ``popularity="zipf"`` (default) is the dense latent-factor model; ``"longtail"`` the sparse
    taste-group model for large catalogues (see the module docstring): implicit ones, every item
    seen at least once, cost ∝ ``n_interactions`` (100k × 250k × 2M in seconds). It uses
    ``popularity_exponent`` (in (0, 2]), ``n_clusters``, ``signal``, ``min_per_user``, ``activity_sigma``; ``n_factors``
    only as the default ``n_clusters``, and not ``user_noise``. A log past this machine's memory is refused first.

    Parameters
    ----------
    n_users, n_items : int, default 1000, 500
        Shape of the user×item matrix.
    n_interactions : int, optional
        Exact number of (distinct) user-item entries. Default: about 2% density,
        ``round(0.02 * n_users * n_items)``, at least ``min_per_user * n_users``; with
        ``"longtail"`` ``20 * n_users``, at least ``n_items``. Always exact: repeats are redrawn.
    n_factors : int, default 8
        Dimension of the latent taste vectors.
    popularity_exponent : float, default 1.0
        Zipf exponent of the item popularity prior (0: uniform).
    ratings : bool, optional
        Store 1-5 star ratings (from per-entry affinity quantiles, with the star shares of
        ML-100K) instead of ones. Default: True for ``"zipf"``; ``"longtail"`` has none.
    timestamps : bool, default True
        Attach one Unix timestamp per entry: each user is active in a random window
        between 2000 and 2015 and the entries fall uniformly in it.
    random_state : int or None, default 0
        Seed of :func:`numpy.random.default_rng`; the same arguments give the same log.
    popularity : {"zipf", "longtail"}, default "zipf"
    n_clusters : int, optional
        Number of taste clusters; default ``n_factors``.
    signal : float, optional
        Standard deviation of the affinity term (default 2); with ``"longtail"`` the log-weight
        boost of the user's own taste group (default 4). 0 leaves popularity only.
    user_noise : float, default 0.5
        Spread of users around their cluster centre (relative to the centres' scale).
    min_per_user : int, default 5
        Minimum number of interactions per user.
    activity_sigma : float, default 1.0
        Log-normal sigma of the per-user activity (larger: heavier tail).
    chunk_cells : int, default 2**23
        User-item cells processed at once (memory bound of ~4 float32 arrays of this size).
        The result depends on it only through the random stream; keep it fixed for
        reproducibility.
    return_truth : bool, default False
        Also return the generating parameters.

    Returns
    -------
    Interactions
        Shape (n_users, n_items) with ids ``0..n-1``, ``n_interactions`` entries (float32
        stars 1-5, or ones with ``ratings=False``) and ``timestamps`` of shape (nnz,) or None.
    truth : dict, only with ``return_truth=True``
        ``user_cluster`` (n_users,), ``user_factors`` (n_users, n_factors),
        ``item_factors`` (n_items, n_factors), ``cluster_centres`` (n_clusters, n_factors),
        ``item_popularity`` (n_items,) prior probabilities summing to 1, ``user_counts`` (n_users,);
        with ``"longtail"`` ``user_cluster``, ``item_cluster``, ``item_popularity``, ``user_counts``.
    """
    limit = np.iinfo(np.int32).max  # scipy's CSR index range
    n_users, n_items, n_factors = (check_int(n_users, "n_users", 1, limit), check_int(n_items, "n_items", 1, limit),
                                   check_int(n_factors, "n_factors", 1, 10_000))
    min_per_user = check_int(min_per_user, "min_per_user", 1, n_items)
    tail = check_choice(popularity, "popularity", ("zipf", "longtail")) == "longtail"
    low = max(min_per_user * n_users, n_items) if tail else min_per_user * n_users
    if n_interactions is None:
        n_interactions = max(min(20 * n_users if tail else round(0.02 * n_users * n_items), n_users * n_items), low)
    n_interactions = check_int(n_interactions, "n_interactions")
    if not low <= n_interactions <= n_users * n_items:
        what = "max(min_per_user * n_users, n_items)" if tail else "min_per_user * n_users"
        raise DataError(f"n_interactions must lie in [{what}, n_users * n_items] = [{low}, {n_users * n_items}]"
                        f"{' for popularity=longtail' * tail}; got {n_interactions}")
    popularity_exponent = check_real(popularity_exponent, "popularity_exponent", 0, 2 if tail else None,
                                     low_open=tail)
    if tail and ratings:
        raise DataError("popularity='longtail' generates implicit positives: ratings must be None or False; "
                        "got True")
    signal = check_real((4.0 if tail else 2.0) if signal is None else signal, "signal", 0)
    user_noise = check_real(user_noise, "user_noise", 0)
    activity_sigma = check_real(activity_sigma, "activity_sigma", 0)
    chunk_cells = check_int(chunk_cells, "chunk_cells", 1)
    n_clusters = n_factors if n_clusters is None else check_int(n_clusters, "n_clusters", 1)
    check_fits_in_memory(40 * n_interactions + 8 * (3 * n_users + 2 * n_items + n_clusters) * n_factors,  # ~40 B an entry
                         f"synthetic({n_users:,} × {n_items:,}, {n_interactions:,} interactions, {n_clusters:,} clusters)",
                         "pass a smaller n_interactions (default: 2% of n_users × n_items), or fewer users, items or clusters")

    rng = make_rng(random_state)
    if tail:
        return _longtail_log(rng, n_users, n_items, n_interactions, n_clusters, popularity_exponent, signal,
                             min_per_user, activity_sigma, timestamps, chunk_cells, return_truth)
    ratings = True if ratings is None else ratings

    # --- latent structure
    centres = rng.standard_normal((n_clusters, n_factors))
    cluster = rng.integers(0, n_clusters, size=n_users)
    user_f = centres[cluster] + user_noise * rng.standard_normal((n_users, n_factors))
    item_f = rng.standard_normal((n_items, n_factors))
    scale = signal / np.sqrt(n_factors * (1.0 + user_noise**2))
    u32 = (user_f * scale).astype(np.float32)  # affinity = u32 @ v32.T, std ~ signal
    v32 = item_f.astype(np.float32)
    ranks = rng.permutation(n_items) + 1.0
    pop = ranks ** -float(popularity_exponent)
    pop /= pop.sum()
    logpop = np.log(pop).astype(np.float32)

    # --- per-user counts and CSR layout
    counts = _user_counts(rng, n_users, n_items, n_interactions, min_per_user, activity_sigma)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    indices = np.empty(nnz, dtype=np.int32)

    # Users sorted by count so a chunk's users need similar top-k sizes.
    order = np.argsort(-counts, kind="stable")
    pos = 0
    while pos < n_users:
        k_max = int(counts[order[pos]])
        rows_per_chunk = max(1, chunk_cells // n_items)
        users = order[pos:pos + rows_per_chunk]
        pos += len(users)
        k = counts[users]
        keys = u32[users] @ v32.T  # (r, n_items) affinities
        keys += logpop
        noise = rng.standard_exponential(keys.shape, dtype=np.float32)
        np.maximum(noise, _TINY, out=noise)  # float32 draws can be exactly 0
        np.log(noise, out=noise)
        keys -= noise  # log w + Gumbel(0, 1): -log(Exp(1)) is standard Gumbel
        del noise
        top = top_columns(keys, k_max)
        top_keys = np.take_along_axis(keys, top, axis=1)
        del keys
        # rank the k_max candidates by key, keep each user's first k, then sort by item id
        rank = np.argsort(-top_keys, axis=1, kind="stable")
        chosen = np.take_along_axis(top, rank, axis=1)
        keep = np.arange(k_max) < k[:, None]
        chosen = np.where(keep, chosen, n_items)
        chosen.sort(axis=1)
        # scatter row r's first k[r] entries to indptr[user]..indptr[user+1]
        starts = indptr[users]
        dest = np.repeat(starts, k) + (np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k))
        indices[dest] = chosen[keep]  # keep is a prefix mask per row; sorted sentinels lie after

    rows = np.repeat(np.arange(n_users, dtype=np.int32 if n_users < 2**31 else np.int64), counts)
    block = 1 << 20  # entries per block for the per-entry passes (bounded temporaries)
    if ratings:
        noise_sd = 0.5 * max(signal, 1e-3)
        bias = rng.normal(0.0, 0.3 * max(signal, 1e-3), size=n_users).astype(np.float32)
        score = np.empty(nnz, dtype=np.float32)
        for b in range(0, nnz, block):
            r, c = rows[b:b + block], indices[b:b + block]
            score[b:b + block] = np.einsum("ij,ij->i", u32[r], v32[c]) + bias[r]
        score += rng.normal(0.0, noise_sd, size=nnz).astype(np.float32)
        cuts = np.quantile(score, _STAR_CDF)
        values = (1 + np.searchsorted(cuts, score, side="right")).astype(np.float32)
        del score
    else:
        values = np.ones(nnz, dtype=np.float32)
    ts = _timestamps(rng, rows, n_users, nnz, block) if timestamps else None
    del rows
    matrix = sp.csr_matrix((values, indices, indptr), shape=(n_users, n_items))
    inter = Interactions(matrix, np.arange(n_users), np.arange(n_items), ts, has_ratings=bool(ratings))
    logger.info("synthetic log: %r", inter)
    if return_truth:
        return inter, {"user_cluster": cluster, "user_factors": user_f, "item_factors": item_f,
                       "cluster_centres": centres, "item_popularity": pop, "user_counts": counts}
    return inter


def _longtail_log(rng, n_users, n_items, n_interactions, n_clusters, exponent, signal, min_per_user,
                  activity_sigma, timestamps, chunk_cells, return_truth):
    """The ``popularity="longtail"`` log (arguments checked by :func:`synthetic`)."""
    cluster, item_cluster = rng.integers(0, n_clusters, size=n_users), rng.integers(0, n_clusters, size=n_items)
    pop = (rng.permutation(n_items) + 1.0) ** -exponent
    pop /= pop.sum()
    counts = _user_counts(rng, n_users, n_items, n_interactions, min_per_user, activity_sigma)
    indices = (_longtail(rng, counts, cluster, item_cluster, pop, signal, chunk_cells) % n_items).astype(np.int32)
    rows = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    ts = _timestamps(rng, rows, n_users, len(indices), 1 << 20) if timestamps else None
    indptr = np.concatenate([[0], np.cumsum(counts)])
    matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_users, n_items))
    inter = Interactions(matrix, np.arange(n_users), np.arange(n_items), ts, has_ratings=False)
    logger.info("synthetic long-tail log: %r", inter)
    truth = {"user_cluster": cluster, "item_cluster": item_cluster, "item_popularity": pop, "user_counts": counts}
    return (inter, truth) if return_truth else inter
