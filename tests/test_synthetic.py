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
