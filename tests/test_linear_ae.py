"""LinearAE against independent float64 references of its closed form, its errors, and real-data floors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import recae
from recae import EASE, LinearAE, evaluate, strong_generalization_split
from recae.exceptions import DataError, MemoryBudgetError

from test_ease import random_matrix


def svd_reference(X: np.ndarray, rank: int, l2: float) -> np.ndarray:
    """B = V_r·diag(σ²/(σ²+λ))·V_rᵀ from the SVD of X itself (not the Gram matrix's eigenvectors)."""
    _, sigma, Vt = np.linalg.svd(X, full_matrices=False)
    V, s = Vt[:rank].T, sigma[:rank] ** 2
    return (V * (s / (s + l2))) @ V.T


def objective(X: np.ndarray, B: np.ndarray, l2: float) -> float:
    return float(np.sum((X - X @ B) ** 2) + l2 * np.sum(B ** 2))


def weights(model: LinearAE) -> np.ndarray:
    V = model.item_factors_.cpu().double().numpy()
    return V @ V.T


@pytest.mark.parametrize("dtype,atol", [("float32", 2e-5), ("float64", 1e-6)])
@pytest.mark.parametrize("rank,l2", [(3, 0.5), (5, 5.0), (8, 50.0)])
def test_B_matches_svd_reference(dtype, atol, rank, l2):
    X = random_matrix()
    model = LinearAE(rank=rank, l2=l2, dtype=dtype, device="cpu").fit(sp.csr_matrix(X))
    assert model.item_factors_.shape == (12, rank) and model.rank_ == rank
    ref = svd_reference(X, rank, l2)
    assert np.abs(ref).max() > 0.05
    np.testing.assert_allclose(weights(model), ref, rtol=0, atol=atol)
    np.testing.assert_allclose(model.score(sp.csr_matrix(X)), X @ ref, rtol=0, atol=1e-4)


def test_full_rank_is_ridge_regression_of_X_on_itself():
    X = random_matrix(seed=2)
    model = LinearAE(rank=np.int64(10**6), l2=3.0, dtype="float64", device="cpu").fit(sp.csr_matrix(X))
    assert model.rank_ == 12  # capped at the number of items
    ridge = np.linalg.solve(X.T @ X + 3.0 * np.eye(12), X.T @ X)
    np.testing.assert_allclose(weights(model), ridge, rtol=0, atol=1e-6)  # factors are stored in float32


def test_B_minimises_the_rank_constrained_objective():
    """No other rank-r matrix built from r eigen-directions, or a perturbation of B, does better."""
    X = random_matrix(seed=3)
    rank, l2 = 4, 2.0
    B = weights(LinearAE(rank=rank, l2=l2, dtype="float64", device="cpu").fit(sp.csr_matrix(X)))
    best = objective(X, B, l2)
    rng = np.random.default_rng(0)
    for _ in range(50):  # rank-r perturbations: B + P·Q with P of r columns spanning B's column space
        V = np.linalg.eigh(B)[1][:, -rank:]
        low = B + V @ rng.normal(scale=1e-2, size=(rank, 12))
        assert np.linalg.matrix_rank(low) <= rank
        assert objective(X, low, l2) > best
    # other choices of r eigen-directions of XᵀX, with their own optimal shrinkage, are worse
    s, V = np.linalg.eigh(X.T @ X)
    for pick in ([0, 1, 2, 3], [8, 9, 10, 6], [11, 10, 9, 7]):
        other = (V[:, pick] * (s[pick] / (s[pick] + l2))) @ V[:, pick].T
        assert objective(X, other, l2) > best


def test_l2_zero_is_pure_svd():
    X = random_matrix(seed=4)
    model = LinearAE(rank=3, l2=0.0, dtype="float64", device="cpu").fit(sp.csr_matrix(X))
    _, _, Vt = np.linalg.svd(X)
    np.testing.assert_allclose(weights(model), Vt[:3].T @ Vt[:3], rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("l2", [0.0, 3.0])
def test_rank_beyond_the_data_keeps_only_directions_X_spans(dtype, l2):
    """Fewer users than items: XᵀX has rank 5, and its other eigenvectors are rounding noise."""
    X = random_matrix(seed=5, n_users=5)
    model = LinearAE(rank=12, l2=l2, dtype=dtype, device="cpu").fit(sp.csr_matrix(X))
    assert model.rank_ == np.linalg.matrix_rank(X) == 5
    ref = np.linalg.pinv(X) @ X if l2 == 0 else svd_reference(X, 5, l2)  # PureSVD at full rank: the projector
    np.testing.assert_allclose(weights(model), ref, rtol=0, atol=1e-4)


def test_empty_item_gets_no_weight():
    X = random_matrix(seed=6)
    X[:, 4] = 0.0
    model = LinearAE(rank=12, l2=0.0, dtype="float64", device="cpu").fit(sp.csr_matrix(X))
    assert model.rank_ == 11
    B = weights(model)
    np.testing.assert_allclose(B[4], 0.0, atol=1e-6)
    np.testing.assert_allclose(B[:, 4], 0.0, atol=1e-6)


def test_new_user_folds_in_through_the_same_weights():
    X = random_matrix(seed=1)
    model = LinearAE(rank=5, l2=5.0, dtype="float64", device="cpu").fit(sp.csr_matrix(X))
    x = np.zeros(12)
    x[3], x[7] = 2.0, 1.0
    expected = x @ svd_reference(X, 5, 5.0)
    ids, scores = model.recommend_new({3: 2.0, 7: 1.0}, n=10)
    order = [j for j in np.argsort(-expected, kind="stable") if j not in (3, 7)]
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_allclose(scores, expected[order], rtol=0, atol=1e-5)


@pytest.mark.parametrize("rank", [0, -3, 2.5, "8", None, True])
def test_bad_rank(rank):
    with pytest.raises(DataError, match=rf"rank must be a positive integer; got {rank!r}"):
        LinearAE(rank=rank, device="cpu").fit(sp.csr_matrix(random_matrix()))


@pytest.mark.parametrize("l2", [-1.0, float("nan"), float("inf"), "200", None])
def test_bad_l2(l2):
    with pytest.raises(DataError, match="l2 must be a finite number >= 0"):
        LinearAE(l2=l2, device="cpu").fit(sp.csr_matrix(random_matrix()))


def test_bad_dtype_and_memory_budget():
    X = sp.csr_matrix(random_matrix())
    with pytest.raises(DataError, match=r"dtype must be one of \['float32', 'float64'\]; got 'half'"):
        LinearAE(dtype="half", device="cpu").fit(X)
    with pytest.raises(MemoryBudgetError, match=r"LinearAE on 12 items needs about .* \(4 × 12² × 4 bytes\)"):
        LinearAE(memory_budget_gb=1e-9, device="cpu").fit(X)
    with pytest.raises(DataError, match="memory_budget_gb must be a positive number"):
        LinearAE(memory_budget_gb=0, device="cpu").fit(X)


def test_adds_to_ease_in_a_blend_ml100k(ml100k, one_thread):
    positives = ml100k.binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(positives, n_heldout=0.1, random_state=98765)

    def ndcg(model):
        return evaluate(model, split, k=100, metrics=("ndcg",)).loc["ndcg@100", "mean"]

    ease = EASE(l2=500.0, device="cpu").fit(split.train)
    low_rank = LinearAE(l2=200.0, device="cpu").fit(split.train)  # the Blend's setting
    blend = recae.Blend.from_models([ease, low_rank], valid=split)
    # Measured (recae 0.1, torch 2.13 CPU): EASE 0.4689, LinearAE 0.4549, their Blend 0.4762
    # with weights (0.5, 0.5) chosen on validation; test users are not used to choose them.
    # 752 training users: XᵀX's numerical rank in float32 is 605, below the requested 1024.
    assert 500 < low_rank.rank_ < 752
    assert 0.43 < ndcg(low_rank) < ndcg(ease)
    assert blend.weights_[1] >= 0.2
    assert ndcg(blend) > ndcg(ease) + 0.004


def test_a_loaded_model_folds_in_exactly_as_the_saved_one(tmp_path):
    # safetensors can hand back a tensor off a 64-byte boundary, where matmul rounds differently
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user": rng.integers(0, 60, 600), "item": rng.integers(0, 40, 600)})
    data = recae.Interactions.from_pandas(frame, user="user", item="item")
    model = recae.LinearAE(rank=8, device="cpu").fit(data)
    model.save(tmp_path / "m.recae")
    loaded = recae.load(tmp_path / "m.recae")
    history = data.item_ids[:2].tolist()
    assert np.array_equal(model.recommend_new(history, n=5)[1], loaded.recommend_new(history, n=5)[1])
    assert all(t.data_ptr() % 64 == 0 for t in loaded.get_state().values())


def test_many_empty_items_leave_float32_converging_and_get_zero_factors(ml100k):
    # ML-100K binarized at 4.5 keeps 510 of 1,682 items without a positive: before, float32 eigh
    # failed to converge on that many equal zero eigenvalues and let a raw LinAlgError out
    data = ml100k.binarize(4.5)
    empty = np.flatnonzero(np.bincount(data.matrix.indices[data.matrix.data != 0], minlength=data.n_items) == 0)
    assert len(empty) > 500
    one = LinearAE(rank=64, device="cpu").fit(data)
    ref = LinearAE(rank=64, dtype="float64", device="cpu").fit(data)
    np.testing.assert_allclose(one.item_factors_[empty].numpy(), 0.0)
    ids, _ = one.recommend(data.user_ids[:20], n=10)
    ref_ids, _ = ref.recommend(data.user_ids[:20], n=10)
    assert (ids == ref_ids).mean() > 0.9  # float32 and float64 rank alike


def test_float32_failure_is_solved_on_a_float64_gram_and_a_float64_failure_is_named(monkeypatch):
    # values of 1e20 overflow XᵀX in float32 (inf): the float64 retry builds XᵀX again, not an upcast of inf
    X = sp.random(50, 20, density=0.3, random_state=3, format="csr")
    X.data[:] = 1e20
    model = LinearAE(rank=8, device="cpu").fit(X)
    assert model.rank_ == 8 and torch.isfinite(model.item_factors_).all()

    def never_converges(G):
        raise torch.linalg.LinAlgError("forced")
    monkeypatch.setattr(torch.linalg, "eigh", never_converges)
    with pytest.raises(DataError, match=r"did not converge even in float64 \(forced\).*scaling the values down"):
        LinearAE(rank=8, device="cpu").fit(X)


def test_scores_that_overflow_float32_say_so():
    # values the history check accepts (≤ float32's max) overflow the scores: the weights are fine
    X = sp.csr_matrix(random_matrix(seed=1, n_users=40, n_items=20))
    model = LinearAE(rank=8, device="cpu").fit(X)
    with pytest.raises(recae.TrainingError, match=r"the scores overflow float32 \(scale them down\)"):
        model.score(sp.csr_matrix(np.full((1, 20), 3e38, np.float32)))
