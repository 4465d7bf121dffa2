"""Tests for recae.metrics against hand-computed values."""

import numpy as np
import pytest
import scipy.sparse as sp

from recae import metrics as M
from recae.exceptions import DataError

L3 = 1.0 / np.log2(3)  # discount at rank 2, ~0.63093

# Main table: 4 users x 6 items, top lists of length 4, mostly used with k=3.
#   u0: truth {0, 2};        top [0, 1, 2, 3]   -> hits@3 [1, 0, 1]
#   u1: truth {1, 3, 4, 5};  top [1, 3, 0, 5]   -> hits@3 [1, 1, 0] (|T| = 4 > k)
#   u2: truth {};            top [0, 1, -1, -1] -> NaN (no relevant items)
#   u3: truth {4} (+ an explicit zero at item 3, which must be ignored);
#                            top [3, 4, -1, -1] -> hits@3 [0, 1, 0]
# u2's padding key is 2*6 - 1 = 11 == key of (u1, item 5): a hit only if
# padding is not masked.
TOP = np.array(
    [
        [0, 1, 2, 3],
        [1, 3, 0, 5],
        [0, 1, -1, -1],
        [3, 4, -1, -1],
    ]
)
ROWS = [0, 0, 1, 1, 1, 1, 3, 3]
COLS = [0, 2, 1, 3, 4, 5, 4, 3]
VALS = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def truth_coo():
    return sp.coo_matrix((VALS, (ROWS, COLS)), shape=(4, 6))


def truth_csr():
    return truth_coo().tocsr()


def assert_vec(actual, expected):
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=float), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- hits


def test_hits_table():
    h = M.hits(TOP, truth_csr(), 3)
    assert h.dtype == bool and h.shape == (4, 3)
    expected = np.array(
        [[1, 0, 1], [1, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=bool
    )
    np.testing.assert_array_equal(h, expected)


def test_hits_default_k_is_full_width_and_padding_never_hits():
    h = M.hits(TOP, truth_csr())
    assert h.shape == (4, 4)
    # u1 slot 4 (item 5) is a hit; u2's -1 slots (key 11 = (u1, 5)) are not.
    np.testing.assert_array_equal(h[1], [True, True, False, True])
    np.testing.assert_array_equal(h[2], [False] * 4)


def test_padding_key_collision_with_previous_user_last_item():
    # u0 truth {5} -> key 5; u1 slot 0 is -1 -> key 1*6 - 1 = 5 too.
    truth = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1], [0, 0, 1, 0, 0, 0]]))
    top = np.array([[5, 0], [-1, 2]])
    # u1: first hit at rank 2 -> RR = 1/2 (would be 1 if -1 matched)
    assert_vec(M.reciprocal_rank_at_k(top, truth, 2), [1.0, 0.5])


# ---------------------------------------------------------------- per-metric values at k=3


def test_ndcg_table():
    # u0: DCG = 1/log2(2) + 1/log2(4) = 1.5;  IDCG (min(2,3)=2) = 1 + 1/log2(3)
    # u1: DCG = 1 + 1/log2(3);  IDCG (min(4,3)=3) = 1 + 1/log2(3) + 1/log2(4)
    # u3: DCG = 1/log2(3);      IDCG (|T|=1; the explicit zero is ignored) = 1
    expected = [1.5 / (1 + L3), (1 + L3) / (1.5 + L3), np.nan, L3]
    assert_vec(M.ndcg_at_k(TOP, truth_csr(), 3), expected)


def test_recall_standard_vs_truncated_differ_when_more_relevant_than_k():
    # standard: u0 2/2, u1 2/4, u3 1/1
    assert_vec(M.recall_at_k(TOP, truth_csr(), 3), [1.0, 0.5, np.nan, 1.0])
    # truncated: u0 2/min(3,2), u1 2/min(3,4) = 2/3, u3 1/min(3,1)
    assert_vec(M.truncated_recall_at_k(TOP, truth_csr(), 3), [1.0, 2 / 3, np.nan, 1.0])


def test_recall_k_smaller_than_width():
    # at k=4 u1 also hits item 5: standard 3/4, truncated 3/min(4,4) = 3/4
    assert_vec(M.recall_at_k(TOP, truth_csr(), 4), [1.0, 0.75, np.nan, 1.0])
    assert_vec(M.truncated_recall_at_k(TOP, truth_csr(), 4), [1.0, 0.75, np.nan, 1.0])
    # at k=1: u0 item 0 hit, u1 item 1 hit, u3 item 3 miss
    assert_vec(M.recall_at_k(TOP, truth_csr(), 1), [0.5, 0.25, np.nan, 0.0])
    assert_vec(M.truncated_recall_at_k(TOP, truth_csr(), 1), [1.0, 1.0, np.nan, 0.0])


def test_precision_table():
    # hits@3 / 3; u3's padding slot counts as a miss
    assert_vec(M.precision_at_k(TOP, truth_csr(), 3), [2 / 3, 2 / 3, np.nan, 1 / 3])


def test_average_precision_table():
    # u0: hits at ranks 1, 3: (1/1 + 2/3) / min(3,2) = 5/6
    # u1: hits at ranks 1, 2: (1/1 + 2/2) / min(3,4) = 2/3
    # u3: hit at rank 2:      (1/2) / min(3,1)      = 1/2
    expected = [5 / 6, 2 / 3, np.nan, 0.5]
    assert_vec(M.average_precision_at_k(TOP, truth_csr(), 3), expected)
    assert M.map_at_k is M.average_precision_at_k


def test_reciprocal_rank_table():
    # first hits at ranks 1, 1, -, 2
    assert_vec(M.reciprocal_rank_at_k(TOP, truth_csr(), 3), [1.0, 1.0, np.nan, 0.5])
    assert M.mrr_at_k is M.reciprocal_rank_at_k
    # k=1: u3's only hit (rank 2) falls outside -> 0
    assert_vec(M.reciprocal_rank_at_k(TOP, truth_csr(), 1), [1.0, 1.0, np.nan, 0.0])


def test_hit_rate_table():
    assert_vec(M.hit_rate_at_k(TOP, truth_csr(), 3), [1.0, 1.0, np.nan, 1.0])
    assert_vec(M.hit_rate_at_k(TOP, truth_csr(), 1), [1.0, 1.0, np.nan, 0.0])


def test_nan_users_droppable_with_nanmean():
    # mean over u0, u1, u3 of [1, 0.5, 1] = 2.5 / 3
    assert np.nanmean(M.recall_at_k(TOP, truth_csr(), 3)) == pytest.approx(2.5 / 3)


def test_outputs_are_float64_per_user():
    for name, fn in M.RANKING_METRICS.items():
        out = fn(TOP, truth_csr(), 3)
        assert out.dtype == np.float64 and out.shape == (4,), name


# ---------------------------------------------------------------- perfect / no hits


def test_perfect_ranking_scores_one():
    # u0: all 3 relevant items in some order; u1: |T|=4 > k=2, both slots relevant
    truth = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1]]))
    top = np.array([[2, 0, 1], [4, 1, 0]])
    # k=3, u0: DCG = IDCG = 1 + 1/log2(3) + 1/log2(4) -> 1
    assert M.ndcg_at_k(top, truth, 3)[0] == pytest.approx(1.0)
    # k=2: both users' top-2 are relevant; IDCG over min(|T|, 2) = 2 hits
    # -> ndcg = (1 + L3) / (1 + L3) = 1 although u1 has 4 relevant items
    for name in ["ndcg", "truncated_recall", "precision", "map", "mrr", "hit_rate"]:
        assert_vec(M.RANKING_METRICS[name](top, truth, 2), [1.0, 1.0])
    # standard recall is capped by k / |T|: u0 2/3, u1 2/4
    assert_vec(M.recall_at_k(top, truth, 2), [2 / 3, 0.5])


def test_no_hits_scores_zero():
    truth = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1]]))
    top = np.array([[2, 3, 4], [0, -1, -1]])
    for name, fn in M.RANKING_METRICS.items():
        assert_vec(fn(top, truth, 3), [0.0, 0.0])


def test_all_users_empty_truth_give_nan():
    truth = sp.csr_matrix((2, 5))
    top = np.array([[0, 1], [2, 3]])
    for fn in M.RANKING_METRICS.values():
        assert np.isnan(fn(top, truth, 2)).all()
    assert not M.hits(top, truth).any()


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: m,
        sp.csr_matrix,
        sp.csc_matrix,
        sp.lil_matrix,
        sp.csr_array,
        sp.coo_array,
    ],
    ids=["coo", "csr", "csc", "lil", "csr_array", "coo_array"],
)
def test_sparse_formats_equivalent(convert):
    ref = truth_csr()
    other = convert(truth_coo())
    for name, fn in M.RANKING_METRICS.items():
        np.testing.assert_array_equal(fn(TOP, other, 3), fn(TOP, ref, 3), err_msg=name)


def test_duplicates_summed_and_input_not_mutated():
    # (0, 2) stored twice as 0.5 + 0.5; unsorted column order within the row
    truth = sp.csr_matrix(
        (np.array([0.5, 1.0, 0.5]), np.array([2, 0, 2]), np.array([0, 3])), shape=(1, 4)
    )
    before = (truth.data.copy(), truth.indices.copy())
    # |T| = 2 (items 0 and 2), top [2, 1, 0]: recall@3 = 2/2 (duplicates not double-counted)
    assert_vec(M.recall_at_k(np.array([[2, 1, 0]]), truth, 3), [1.0])
    np.testing.assert_array_equal(truth.data, before[0])
    np.testing.assert_array_equal(truth.indices, before[1])


# ---------------------------------------------------------------- coverage


def test_coverage():
    # k=1: {0, 1, 3} -> 3/6; k=3: {0, 1, 2, 3, 4} -> 5/6; k=4: adds 5 -> 6/6
    assert M.coverage_at_k(TOP, 6, 1) == pytest.approx(0.5)
    assert M.coverage_at_k(TOP, 6, 3) == pytest.approx(5 / 6)
    assert M.coverage_at_k(TOP, 6, 4) == pytest.approx(1.0)
    # larger catalogue: 6 of 12 items at k=4; -1 padding is not an item
    assert M.coverage_at_k(TOP, 12, 4) == pytest.approx(0.5)
    assert M.coverage_at_k(np.array([[-1, -1]]), 3, 2) == 0.0
    assert isinstance(M.coverage_at_k(TOP, 6, 3), float)


# ---------------------------------------------------------------- rmse / mae


def test_rmse_mae():
    y_true = [1.0, 2.0, 3.0, 4.0]
    y_pred = [2.0, 2.0, 1.0, 4.0]
    # errors [1, 0, -2, 0]: RMSE = sqrt((1 + 4) / 4) = sqrt(1.25); MAE = 3 / 4
    assert M.rmse(y_true, y_pred) == pytest.approx(np.sqrt(1.25))
    assert M.mae(y_true, y_pred) == pytest.approx(0.75)
    assert M.rmse([3.0], [3.0]) == 0.0


@pytest.mark.parametrize("fn", [M.rmse, M.mae])
def test_rating_errors(fn):
    with pytest.raises(ValueError, match=r"3 and 2"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-empty"):
        fn([], [])
    with pytest.raises(ValueError, match="finite"):
        fn([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        fn([1.0, 2.0], [np.inf, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        fn([[1.0, 2.0]], [[1.0, 2.0]])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("k", [0, 5, -1, 2.0, True])
def test_bad_k(k):
    with pytest.raises(ValueError, match=r"top.shape\[1\] = 4") as exc:
        M.ndcg_at_k(TOP, truth_csr(), k)
    assert repr(k) in str(exc.value)
    with pytest.raises(ValueError, match=r"top.shape\[1\] = 4"):
        M.coverage_at_k(TOP, 6, k)


def test_mismatched_rows_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 6\)"):
        M.recall_at_k(TOP[:3], truth_csr(), 3)


def test_index_out_of_range():
    top = TOP.copy()
    top[1, 2] = 6  # == n_items: the first invalid index
    with pytest.raises(ValueError, match=r"n_items = 6, got max 6"):
        M.precision_at_k(top, truth_csr(), 3)
    with pytest.raises(ValueError, match=r"n_items = 6, got max 6"):
        M.coverage_at_k(top, 6, 3)
    # beyond the cutoff the value is not inspected
    assert_vec(M.precision_at_k(top, truth_csr(), 2)[:2], [0.5, 1.0])


def test_index_below_minus_one():
    top = TOP.copy()
    top[0, 0] = -2
    with pytest.raises(ValueError, match=r">= -1.*got min -2"):
        M.hits(top, truth_csr(), 3)


def test_top_shape_and_dtype_and_truth_type():
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)"):
        M.hits(np.arange(4), truth_csr(), 1)
    with pytest.raises(ValueError, match="integer dtype"):
        M.hits(TOP.astype(float), truth_csr(), 3)
    # a dense array is the same truth (the module docstring's "scipy.sparse matrix or array")
    np.testing.assert_array_equal(M.hits(TOP, truth_csr().toarray(), 3), M.hits(TOP, truth_csr(), 3))
    with pytest.raises(DataError, match="scipy.sparse matrix or a 2-D numeric array.*got list"):
        M.hits(TOP, truth_csr().toarray().tolist(), 3)
    with pytest.raises(DataError, match="row 0 repeats item 1"):
        M.recall_at_k(np.array([[1, 1, 1]]), sp.csr_matrix([[0, 1, 0]]), 3)
    with pytest.raises(DataError, match="must be numbers"):
        M.rmse(["a"], [1])
    with pytest.raises(ValueError, match="positive int"):
        M.coverage_at_k(TOP, 0, 3)


def test_registry():
    assert set(M.RANKING_METRICS) == {
        "ndcg", "recall", "truncated_recall", "precision", "map", "mrr", "hit_rate"
    }
    assert M.RANKING_METRICS["map"] is M.map_at_k
    assert M.RANKING_METRICS["mrr"] is M.mrr_at_k
    assert M.RANKING_METRICS["truncated_recall"] is M.truncated_recall_at_k


# ---------------------------------------------------------------- randomized cross-check


def _reference(top, dense_truth, k):
    """Per-user Python loop: (ndcg, truncated recall)."""
    ndcg, trec = [], []
    for u in range(top.shape[0]):
        rel = set(np.flatnonzero(dense_truth[u]))
        if not rel:
            ndcg.append(np.nan)
            trec.append(np.nan)
            continue
        dcg = sum(1.0 / np.log2(i + 2) for i, it in enumerate(top[u, :k]) if it >= 0 and it in rel)
        idcg = sum(1.0 / np.log2(i + 2) for i in range(min(len(rel), k)))
        n_hit = sum(1 for it in top[u, :k] if it >= 0 and it in rel)
        ndcg.append(dcg / idcg)
        trec.append(n_hit / min(k, len(rel)))
    return np.array(ndcg), np.array(trec)


@pytest.mark.parametrize("k", [1, 5, 10, 15])
def test_random_against_loop_reference(k):
    rng = np.random.default_rng(0)
    n_users, n_items, width = 50, 40, 15
    dense = (rng.random((n_users, n_items)) < 0.15).astype(float)
    dense[:5] = 0  # some users without relevant items
    top = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    # pad the tails of a third of the users
    for u in range(0, n_users, 3):
        top[u, rng.integers(1, width):] = -1
    truth = sp.coo_matrix(dense)
    exp_ndcg, exp_trec = _reference(top, dense, k)
    assert np.isnan(exp_ndcg).sum() == 5
    assert np.nansum(exp_trec) > 0  # the case actually contains hits
    np.testing.assert_allclose(M.ndcg_at_k(top, truth, k), exp_ndcg, rtol=1e-12)
    np.testing.assert_allclose(M.truncated_recall_at_k(top, truth, k), exp_trec, rtol=1e-12)
