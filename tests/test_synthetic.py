"""Tests for recae.datasets.synthetic: shape, seeding, distributions and planted structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recae.datasets import synthetic
from recae.datasets.synthetic import top_columns


def _top_share(inter, frac=0.1) -> float:
    counts = np.sort(np.bincount(inter.matrix.indices, minlength=inter.n_items))[::-1]
    return counts[: max(1, int(frac * inter.n_items))].sum() / counts.sum()


def test_shape_and_exact_count():
    x = synthetic(n_users=300, n_items=200, n_interactions=3000)
    assert x.shape == (300, 200)
    assert x.nnz == 3000
    np.testing.assert_array_equal(x.user_ids, np.arange(300))
    np.testing.assert_array_equal(x.item_ids, np.arange(200))


def test_default_density_is_two_percent():
    x = synthetic()
    assert x.shape == (1000, 500)
    assert x.nnz == 10_000


def test_rows_hold_distinct_sorted_items():
    x = synthetic(n_users=400, n_items=120, n_interactions=8000, chunk_cells=500)  # many tiny chunks
    m = x.matrix
    assert m.indices.min() >= 0 and m.indices.max() < 120
    rows = np.repeat(np.arange(x.n_users), np.diff(m.indptr))
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(m.indices.astype(np.int64))[same_row] > 0)


def test_same_seed_same_log():
    a = synthetic(n_users=500, n_items=300, random_state=7)
    b = synthetic(n_users=500, n_items=300, random_state=7)
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)
    np.testing.assert_array_equal(a.matrix.indices, b.matrix.indices)
    np.testing.assert_array_equal(a.matrix.data, b.matrix.data)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)


def test_different_seeds_differ():
    a = synthetic(n_users=500, n_items=300, random_state=1)
    b = synthetic(n_users=500, n_items=300, random_state=2)
    assert a.nnz == b.nnz
    assert (a.matrix != b.matrix).nnz > 0.5 * a.nnz


def test_global_numpy_random_state_untouched():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    synthetic(n_users=200, n_items=100)
    assert np.random.random() == expected


@pytest.mark.parametrize("minimum", [5, 12])
def test_every_user_has_the_minimum(minimum):
    x = synthetic(n_users=2000, n_items=300, n_interactions=2000 * minimum + 3000, min_per_user=minimum)
    counts = np.diff(x.matrix.indptr)
    assert counts.min() >= minimum
    assert counts.sum() == 2000 * minimum + 3000


def test_user_activity_is_heavy_tailed():
    counts = np.diff(synthetic(n_users=3000, n_items=1000, n_interactions=90_000).matrix.indptr)
    assert counts.max() > 5 * np.median(counts)


def test_counts_capped_at_catalogue_size():
    x = synthetic(n_users=50, n_items=20, n_interactions=900, min_per_user=5)
    counts = np.diff(x.matrix.indptr)
    assert counts.max() <= 20 and counts.sum() == 900


def test_popularity_is_heavy_tailed_and_follows_the_exponent():
    shares = [_top_share(synthetic(n_users=2000, n_items=500, popularity_exponent=e)) for e in (0.0, 1.0, 1.5)]
    assert shares[1] > 0.30  # top 10% of items hold > 30% of the interactions
    assert shares[0] < shares[1] < shares[2]
    # without popularity and affinity the log is flat: the same check fails
    flat = synthetic(n_users=2000, n_items=500, popularity_exponent=0.0, signal=0.0)
    assert _top_share(flat) < 0.2


def test_sampling_follows_popularity_weights():
    """One item per user and no affinity: item frequencies must match the popularity prior."""
    n = 40_000
    x, truth = synthetic(n_users=n, n_items=20, n_interactions=n, min_per_user=1, signal=0.0,
                         ratings=False, timestamps=False, return_truth=True)
    freq = np.bincount(x.matrix.indices, minlength=20)
    expected = n * truth["item_popularity"]
    z = (freq - expected) / np.sqrt(expected)
    assert np.abs(z).max() < 5


def _recall_at_20(scores, train, test):
    s = np.asarray(scores, dtype=float).copy()
    s[train.nonzero()] = -np.inf
    top = np.argsort(-s, axis=1)[:, :20]
    hits = np.take_along_axis(test.toarray(), top, axis=1).sum(1)
    n = np.asarray(test.sum(1)).ravel()
    ok = n > 0
    return float(np.mean(hits[ok] / np.minimum(n[ok], 20)))


def _cluster_vs_global(**kwargs) -> float:
    x, truth = synthetic(n_users=2000, n_items=500, random_state=1, return_truth=True, **kwargs)
    m = x.matrix
    rows = np.repeat(np.arange(x.n_users), np.diff(m.indptr))
    held = np.random.default_rng(0).random(m.nnz) < 0.2
    train = sp.csr_matrix((np.ones((~held).sum()), (rows[~held], m.indices[~held])), shape=m.shape)
    test = sp.csr_matrix((np.ones(held.sum()), (rows[held], m.indices[held])), shape=m.shape)
    cl = truth["user_cluster"]
    member = sp.csr_matrix((np.ones(len(cl)), (cl, np.arange(len(cl)))), shape=(cl.max() + 1, len(cl)))
    cluster_pop = (member @ train).toarray()[cl]
    global_pop = np.tile(np.asarray(train.sum(0)).ravel(), (x.n_users, 1))
    return _recall_at_20(cluster_pop, train, test) / _recall_at_20(global_pop, train, test)


def test_planted_structure_is_learnable():
    """Ranking held-out items by the user's cluster popularity beats global popularity..."""
    assert _cluster_vs_global() > 1.15


def test_no_structure_without_signal():
    """...and the advantage disappears when the affinity term is switched off."""
    assert _cluster_vs_global(signal=0.0) < 1.05


def test_ratings_and_timestamps():
    x = synthetic(n_users=1000, n_items=300)
    assert x.has_ratings
    stars, counts = np.unique(x.matrix.data, return_counts=True)
    np.testing.assert_array_equal(stars, [1, 2, 3, 4, 5])
    assert counts[3] > counts[0]  # 4 stars more common than 1 (ML-like shares)
    ts = x.timestamps
    assert ts.shape == (x.nnz,)
    assert np.all(ts == np.floor(ts))
    assert ts.min() >= 946_684_800 and ts.max() <= 1_420_070_400


def test_ratings_follow_affinity():
    x, truth = synthetic(n_users=1000, n_items=300, return_truth=True)
    m = x.matrix
    rows = np.repeat(np.arange(x.n_users), np.diff(m.indptr))
    aff = np.einsum("ij,ij->i", truth["user_factors"][rows], truth["item_factors"][m.indices])
    assert np.corrcoef(aff, m.data)[0, 1] > 0.5


def test_implicit_and_untimed():
    x = synthetic(n_users=100, n_items=50, ratings=False, timestamps=False)
    assert not x.has_ratings
    assert x.timestamps is None
    assert np.all(x.matrix.data == 1.0)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="n_interactions"):
        synthetic(n_users=100, n_items=50, n_interactions=100)  # < 5 per user
    with pytest.raises(ValueError, match="n_interactions"):
        synthetic(n_users=10, n_items=5, n_interactions=51)
    with pytest.raises(ValueError, match="min_per_user"):
        synthetic(n_users=10, n_items=5, min_per_user=6)


def test_top_columns_handles_ties():
    keys = np.zeros((3, 10), dtype=np.float32)
    keys[1, 7] = 1.0
    top = top_columns(keys, 4)
    assert top.shape == (3, 4)
    assert all(len(set(row)) == 4 for row in top.tolist())
    assert 7 in top[1]
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((5, 50)).astype(np.float32)
    top = top_columns(keys, 6)
    np.testing.assert_array_equal(np.sort(top, 1), np.sort(np.argsort(-keys, 1)[:, :6], 1))


# ----------------------------------------------------------------------------- popularity="longtail"
def _longtail(*shape, **kwargs):
    return synthetic(*shape, popularity="longtail", **kwargs)


def _item_counts(inter) -> np.ndarray:
    return np.bincount(inter.matrix.indices, minlength=inter.n_items)


def test_longtail_same_seed_same_log_and_seeds_differ():
    a, b = _longtail(800, 3000, 12_000, random_state=7), _longtail(800, 3000, 12_000, random_state=7)
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)
    np.testing.assert_array_equal(a.matrix.indices, b.matrix.indices)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    c = _longtail(800, 3000, 12_000, random_state=8)
    assert c.nnz == a.nnz and (a.matrix != c.matrix).nnz > 0.5 * a.nnz


def test_longtail_exact_shape_count_and_implicit_ones():
    """n_interactions is exact (repeats are redrawn); every user has the minimum, every item >= 1 entry."""
    x = _longtail(700, 2500, 11_111, min_per_user=4)
    assert x.shape == (700, 2500) and x.nnz == 11_111
    m = x.matrix
    assert m.has_canonical_format  # distinct, sorted items per row
    assert np.all(m.data == 1.0) and not x.has_ratings
    assert np.diff(m.indptr).min() >= 4 and _item_counts(x).min() >= 1
    ts = x.timestamps
    assert ts.shape == (x.nnz,) and np.all(ts == np.floor(ts))
    assert ts.min() >= 946_684_800 and ts.max() <= 1_420_070_400
    assert _longtail(100, 50, 1000, timestamps=False).timestamps is None
    assert synthetic(300, 200, popularity="longtail").nnz == 20 * 300  # default: 20 per user


def test_longtail_full_matrix_uses_the_exact_fallback():
    x = _longtail(20, 50, 1000, popularity_exponent=2.0)  # every user must take every item
    np.testing.assert_array_equal(x.matrix.toarray(), np.ones((20, 50)))


def _tail_stats(exponent):
    counts = _item_counts(_longtail(5000, 20_000, 100_000, popularity_exponent=exponent))
    top = np.sort(counts)[::-1][: len(counts) // 100]
    return np.mean(counts <= 2), top.sum() / counts.sum()


def test_longtail_has_a_long_tail_and_a_heavy_head():
    rare, head = _tail_stats(1.0)
    assert rare > 0.45  # measured 0.58: most of the catalogue is seen once or twice
    assert head > 0.25  # measured 0.32: the top 1% of items hold a quarter+ of the log (uniform: ~1%)
    (rare_lo, head_lo), (rare_hi, head_hi) = _tail_stats(0.8), _tail_stats(1.2)
    assert rare_lo < rare < rare_hi and head_lo < head < head_hi  # both follow the exponent


def test_longtail_user_activity_is_heavy_tailed():
    counts = np.diff(_longtail(5000, 20_000, 100_000).matrix.indptr)
    assert counts.max() > 10 * np.median(counts) and counts.min() >= 5


def test_longtail_draws_follow_popularity_and_taste_groups():
    """One item per user: after the one-per-item seeding, items are drawn ∝ pop × exp(signal) in-group."""
    n, n_items = 40_000, 30
    for signal in (0.0, 1.5):
        x, truth = _longtail(n, n_items, n, min_per_user=1, n_clusters=3, signal=signal, timestamps=False,
                             return_truth=True)
        pop, g, cl = truth["item_popularity"], truth["item_cluster"], truth["user_cluster"]
        w = pop * np.exp(signal * (g[None, :] == np.arange(3)[:, None]))  # (group, item) weights
        expected = 1 + (n - n_items) * (np.bincount(cl, minlength=3) / n) @ (w / w.sum(1, keepdims=True))
        z = (_item_counts(x) - expected) / np.sqrt(expected)
        assert np.abs(z).max() < 5


def test_longtail_interactions_concentrate_in_the_users_group():
    def own_share(signal):
        x, truth = _longtail(2000, 3000, 30_000, n_clusters=8, signal=signal, return_truth=True)
        rows = np.repeat(np.arange(x.n_users), np.diff(x.matrix.indptr))
        return np.mean(truth["user_cluster"][rows] == truth["item_cluster"][x.matrix.indices])
    assert own_share(None) > 0.6  # default signal 4: measured ~0.8
    assert abs(own_share(0.0) - 1 / 8) < 0.03


def _ease_over_popularity(**kwargs) -> float:
    import recae

    split = recae.strong_generalization_split(_longtail(1500, 800, 20_000, **kwargs), 0.1, random_state=0)
    ndcg = [recae.evaluate(model.fit(split.train), split, k=(100,)).loc["ndcg@100", "mean"]
            for model in (recae.EASE(device="cpu"), recae.Popularity(device="cpu"))]
    return ndcg[0] / ndcg[1]


def test_longtail_structure_lets_ease_beat_popularity(one_thread):
    assert _ease_over_popularity() > 1.4  # measured 2.2 (NDCG@100 0.45 vs 0.20)
    assert _ease_over_popularity(signal=0.0) < 1.1  # popularity only: nothing to learn


@pytest.mark.parametrize("kwargs, words", [
    (dict(popularity_exponent=0.0), ["popularity_exponent", "(0, 2]", "got 0"]),
    (dict(popularity_exponent=2.5), ["popularity_exponent", "(0, 2]", "got 2.5"]),
    (dict(popularity_exponent=float("nan")), ["popularity_exponent", "finite", "nan"]),
    (dict(n_interactions=499), ["n_interactions", "max(min_per_user * n_users, n_items)", "[500, 5000]",
                                "longtail", "got 499"]),
    (dict(n_interactions=5001), ["n_interactions", "[500, 5000]", "got 5001"]),
    (dict(ratings=True), ["implicit", "ratings", "got True"]),
    (dict(popularity="powerlaw"), ["popularity", "'zipf', 'longtail'", "'powerlaw'"]),
])
def test_longtail_bad_arguments_name_expected_and_actual(kwargs, words):
    from recae import DataError

    kwargs = {"popularity": "longtail", **kwargs}
    with pytest.raises(DataError) as err:
        synthetic(10, 500, **kwargs)
    for word in words:
        assert word in str(err.value)


def test_longtail_registry_entry():
    from recae.datasets import registry

    assert registry.SYNTHETIC_LONGTAIL == {"n_users": 100_000, "n_items": 250_000, "n_interactions": 2_000_000,
                                           "popularity": "longtail"}
    assert "synthetic-longtail" in registry.SYNTHETIC_NAMES and "synthetic-longtail" in registry.REGISTRY


def test_a_log_past_the_machines_memory_is_refused_before_drawing():
    from recae.exceptions import MemoryBudgetError

    with pytest.raises(MemoryBudgetError, match=r"synthetic\(2,147,483,647 × 2,147,483,647, .* needs about .* GiB, "
                                                r"over this machine's"):
        synthetic(n_users=2**31 - 1, n_items=2**31 - 1)
    with pytest.raises(MemoryBudgetError, match="1,000,000,000,000 clusters"):  # 64 TB of centres on any machine
        synthetic(n_clusters=10**12)
