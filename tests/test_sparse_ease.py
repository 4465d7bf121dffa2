"""SparseEASE against NumPy references (dense EASE at full density, restricted ridge systems below it),
its memory guard and error paths, persistence, fold-in, and a quality floor on ML-100K."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import recae
from recae import EASE, evaluate, strong_generalization_split
from recae.exceptions import DataError, MemoryBudgetError
from recae.models import sparse_ease
from recae.models.sparse_ease import SparseEASE, estimate_bytes, neighbours_per_item

pytestmark = pytest.mark.usefixtures("one_thread")


def random_matrix(seed: int = 0, n_users: int = 40, n_items: int = 15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = (rng.random((n_users, n_items)) < 0.3).astype(np.float64)
    X *= rng.integers(1, 4, size=X.shape)  # counts 1..3, not just ones
    X[0] = 1.0  # no empty item column
    return X


def reference_B(X: np.ndarray, l2: float) -> np.ndarray:
    P = np.linalg.inv(X.T @ X + l2 * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    return B


@pytest.mark.parametrize("dtype,atol", [("float32", 2e-5), ("float64", 1e-6)])
@pytest.mark.parametrize("l2", [0.5, 5.0, 50.0])
def test_full_density_is_dense_ease(dtype, atol, l2):
    X = random_matrix()
    model = SparseEASE(l2=l2, density=1.0, dtype=dtype, device="cpu").fit(sp.csr_matrix(X))
    ref = reference_B(X, l2)
    assert model.neighbours_ == 14 and model.weights_.nnz == 15 * 14
    assert np.abs(ref).max() > 0.05
    np.testing.assert_allclose(model.weights_.toarray(), ref, rtol=0, atol=atol)
    dense = EASE(l2=l2, dtype=dtype, device="cpu").fit(sp.csr_matrix(X))
    np.testing.assert_allclose(model.score(sp.csr_matrix(X)), dense.score(sp.csr_matrix(X)), rtol=0, atol=1e-4)
    users = np.arange(10)
    ids, scores = model.recommend(users, n=5)
    dense_ids, dense_scores = dense.recommend(users, n=5)
    np.testing.assert_array_equal(ids, dense_ids)
    np.testing.assert_allclose(scores, dense_scores, rtol=0, atol=1e-4)


@pytest.mark.parametrize("density", [0.1, 0.3, 0.6])
def test_sparse_columns_are_restricted_ridge_on_cosine_neighbours(density):
    X = random_matrix(seed=3, n_users=60, n_items=20)
    l2 = 4.0
    model = SparseEASE(l2=l2, density=density, dtype="float64", device="cpu").fit(sp.csr_matrix(X))
    k = neighbours_per_item(20, density)
    assert model.neighbours_ == k == round(density * 20)
    W = model.weights_.tocsc()
    G = X.T @ X
    d = np.sqrt(np.diag(G))
    cosine = G / np.outer(d, d)
    assert np.all(W.diagonal() == 0.0)
    for j in range(20):
        S = W.indices[W.indptr[j]:W.indptr[j + 1]]
        assert len(S) == k and j not in S
        assert cosine[S, j].min() >= np.delete(cosine[:, j], np.append(S, j)).max() - 1e-12  # the top-k by cosine
        b = np.linalg.solve(G[np.ix_(S, S)] + l2 * np.eye(k), G[S, j])
        np.testing.assert_allclose(W.data[W.indptr[j]:W.indptr[j + 1]], b, rtol=0, atol=1e-6)


def test_items_without_enough_cooccurrence_are_filled_by_popularity():
    # block-diagonal log: items 0-2 never co-occur with items 3-9
    X = np.zeros((20, 10))
    X[:8, :3] = 1.0
    X[8:, 3:] = (np.random.default_rng(0).random((12, 7)) < 0.6) + 0.0
    X[8, 3:] = 1.0
    model = SparseEASE(l2=1.0, density=0.5, device="cpu").fit(sp.csr_matrix(X))
    W = model.weights_.tocsc()
    popular = np.argsort(-X.sum(0), kind="stable")
    for j in range(3):
        S = set(W.indices[W.indptr[j]:W.indptr[j + 1]])
        assert len(S) == 5 and {0, 1, 2} - {j} <= S
        fill = [i for i in popular if i not in (0, 1, 2)][:3]
        assert S == ({0, 1, 2} - {j}) | set(fill)
    assert np.all(W.diagonal() == 0.0) and np.isfinite(W.data).all()


def test_memory_estimate_grows_with_density():
    totals = [estimate_bytes(20_000, d, 5_000_000)["total"] for d in (0.001, 0.01, 0.05, 0.2)]
    assert totals == sorted(totals) and totals[-1] > 10 * totals[0]
    weights = [estimate_bytes(20_000, d, 5_000_000)["weights"] for d in (0.01, 0.02)]
    assert weights[1] == pytest.approx(2 * weights[0], rel=1e-3)  # linear in the weights kept
    assert estimate_bytes(20_000, 0.01, 10_000_000)["gram"] > estimate_bytes(20_000, 0.01, 5_000_000)["gram"]
    # at a fixed density the weights grow linearly with the catalogue, not with items²: the dense
    # EASE needs 3 × n² × 4 bytes
    assert estimate_bytes(100_000, 0.001, 10_000_000)["total"] < 3 * 100_000**2 * 4 / 50


def test_memory_budget_error_names_need_budget_and_fixes():
    X = sp.csr_matrix(random_matrix())
    gram_nnz = sp.csr_matrix(X.T @ X).nnz
    before = estimate_bytes(15, 0.5, 0)["total"]  # checked before the Gram is built
    need = estimate_bytes(15, 0.5, gram_nnz)["total"]
    assert need > before
    with pytest.raises(MemoryBudgetError) as err:
        SparseEASE(density=0.5, memory_budget_gb=0.5 * before / 2**30, device="cpu").fit(X)
    assert "sparse Gram estimated before any of it is built" in str(err.value)  # not "at least 0 nonzeros counted so far"
    model = SparseEASE(density=0.5, memory_budget_gb=(before + need) / 2 / 2**30, device="cpu")
    with pytest.raises(MemoryBudgetError) as err:  # refused once the Gram's nonzeros are known
        model.fit(X)
    msg = str(err.value)
    assert f"needs about {need / 2**30:.3g} GiB" in msg and f"sparse Gram with {gram_nnz} nonzeros" in msg
    assert "15 items" in msg and "density=0.5" in msg and f"memory_budget_gb={model.memory_budget_gb}" in msg
    assert "lower density" in msg and "raise memory_budget_gb" in msg
    assert isinstance(err.value, MemoryError) and isinstance(err.value, recae.RecaeError)
    assert not hasattr(model, "weights_")
    SparseEASE(density=0.5, memory_budget_gb=1.01 * need / 2**30, device="cpu").fit(X)


def test_gram_in_blocks_is_refused_early(monkeypatch):
    X = sp.csr_matrix(random_matrix(n_items=30, n_users=80))
    whole = SparseEASE(density=0.3, device="cpu").fit(X).weights_.toarray()
    monkeypatch.setattr(sparse_ease, "GRAM_BLOCK_ENTRIES", 30 * 4)  # blocks of 4 item rows
    np.testing.assert_array_equal(SparseEASE(density=0.3, device="cpu").fit(X).weights_.toarray(), whole)
    seen = []  # the Gram nonzeros each memory check saw: none yet, then a running count per block
    monkeypatch.setattr(sparse_ease, "estimate_bytes",
                        lambda n, d, nnz, dtype: seen.append(nnz) or estimate_bytes(n, d, nnz, dtype))
    SparseEASE(density=0.3, device="cpu").fit(X)
    assert len(seen) == 1 + 8 and seen[0] == 0 and seen == sorted(seen) and seen[-1] == sp.csr_matrix(X.T @ X).nnz
    with pytest.raises(MemoryBudgetError, match="counted so far"):  # refused after the first block
        SparseEASE(density=0.3, memory_budget_gb=estimate_bytes(30, 0.3, seen[1] - 1)["total"] / 2**30,
                   device="cpu").fit(X)


@pytest.mark.parametrize("density", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), "0.1", None, True])
def test_bad_density(density):
    with pytest.raises(DataError, match=r"density must be a number in \(0, 1\] \(the share of nonzero"):
        SparseEASE(density=density, device="cpu").fit(sp.csr_matrix(random_matrix()))


@pytest.mark.parametrize("l2", [-1.0, float("nan"), float("inf"), "500", None, True])
def test_bad_l2(l2):
    with pytest.raises(DataError, match="l2 must be a finite number >= 0"):
        SparseEASE(l2=l2, device="cpu").fit(sp.csr_matrix(random_matrix()))


@pytest.mark.parametrize("budget", [0, -1, "8", None])
def test_bad_memory_budget(budget):
    with pytest.raises(DataError, match="memory_budget_gb must be a positive number"):
        SparseEASE(memory_budget_gb=budget, device="cpu").fit(sp.csr_matrix(random_matrix()))


def test_bad_solver_and_dtype():
    X = sp.csr_matrix(random_matrix())
    with pytest.raises(DataError, match=r"solver must be one of \['auto', 'scipy'\]; got 'lu'"):
        SparseEASE(solver="lu", device="cpu").fit(X)
    with pytest.raises(DataError, match="dtype must be one of"):
        SparseEASE(dtype="float16", device="cpu").fit(X)
    auto = SparseEASE(solver="auto", density=0.4, device="cpu").fit(X).score(X)
    np.testing.assert_array_equal(auto, SparseEASE(solver="scipy", density=0.4, device="cpu").fit(X).score(X))


def test_cholmod_solver_points_to_the_sansa_model_and_its_install_command():
    with pytest.raises(DataError) as err:
        SparseEASE(solver="cholmod", device="cpu").fit(sp.csr_matrix(random_matrix()))
    assert "recae.models.SANSA" in str(err.value) and "solver 'auto' or 'scipy'" in str(err.value)
    assert "apt-get install libsuitesparse-dev && pip install scikit-sparse==0.4.16" in str(err.value)


def test_l2_zero_with_identical_columns_is_singular():
    X = random_matrix(seed=1)
    X[:, 5] = X[:, 3]
    with pytest.raises(DataError, match="singular.*larger l2"):
        SparseEASE(l2=0.0, density=1.0, dtype="float64", device="cpu").fit(sp.csr_matrix(X))
    SparseEASE(l2=1.0, density=1.0, device="cpu").fit(sp.csr_matrix(X))


def test_single_item_and_tiny_blocks(monkeypatch):
    one = SparseEASE(device="cpu").fit(sp.csr_matrix(np.ones((3, 1))))
    assert one.weights_.nnz == 0 and one.score(sp.csr_matrix(np.ones((2, 1)))).shape == (2, 1)
    X = sp.csr_matrix(random_matrix(seed=2, n_users=50, n_items=18))
    whole = SparseEASE(l2=2.0, density=0.5, device="cpu").fit(X).weights_.toarray()
    # tiny work blocks: one system per batch and per factorization, one Gram row per buffer fill, one
    # entry per gather step, one row per neighbour-choice block
    for name in ("MIN_BLOCK_ELEMENTS", "MAX_BLOCK_ELEMENTS", "GATHER_ELEMENTS", "FACTOR_ELEMENTS", "BUFFER_ELEMENTS",
                 "ROW_BLOCK_NNZ"):
        monkeypatch.setattr(sparse_ease, name, 1)
    np.testing.assert_allclose(SparseEASE(l2=2.0, density=0.5, device="cpu").fit(X).weights_.toarray(), whole,
                               rtol=0, atol=1e-6)


def test_save_load_roundtrip(tmp_path):
    X = sp.csr_matrix(random_matrix(seed=4, n_users=50, n_items=20))
    model = SparseEASE(l2=3.0, density=0.3, device="cpu").fit(X)
    path = tmp_path / "sparse.recae"
    model.save(path)
    loaded = recae.load(path)
    assert type(loaded) is SparseEASE and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(X), model.score(X))
    assert loaded.neighbours_ == model.neighbours_
    state = model.get_state()
    assert all(v.ndim == 1 for v in state.values()) and set(state) == {"weights.indptr", "weights.indices",
                                                                       "weights.data"}
    with pytest.raises(ValueError, match="no CSR matrix"):
        loaded.set_state({**state, "weights.indptr": state["weights.indptr"][:-1]})


def test_recommend_new_of_a_training_user_equals_recommend():
    X = sp.csr_matrix(random_matrix(seed=5, n_users=50, n_items=20))
    model = SparseEASE(l2=2.0, density=0.3, device="cpu").fit(X)
    for u in (0, 7, 31):
        ids, scores = model.recommend(u, n=8)
        history = {int(i): float(v) for i, v in zip(X[u].indices, X[u].data)}
        new_ids, new_scores = model.recommend_new(history, n=8)
        np.testing.assert_array_equal(ids, new_ids)
        np.testing.assert_allclose(scores, new_scores, rtol=1e-6, atol=1e-6)
    ids, _ = model.similar_items(4, n=3)
    row = model.weights_[4].toarray().ravel()
    row[4] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-row, kind="stable")[:3])


def test_similar_items_of_an_item_no_other_took_as_a_neighbour():
    """Its row of B is empty (a one-item history scores nothing): its own neighbourhood, column i, ranks instead."""
    X = sp.csr_matrix(random_matrix(seed=5, n_users=60, n_items=30))
    model = SparseEASE(l2=2.0, density=0.07, device="cpu").fit(X)  # 2 neighbours per item
    lonely = np.flatnonzero(np.diff(model.weights_.indptr) == 0)
    assert len(lonely)
    item = int(lonely[0])
    ids, scores = model.similar_items(item, n=2)
    column = model.weights_[:, item].toarray().ravel()
    assert set(ids.tolist()) == set(np.flatnonzero(column).tolist()) and np.all(scores != 0)


@pytest.mark.slow
def test_quality_floor_ml100k(ml100k):
    positives = ml100k.binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(positives, n_heldout=0.1, random_state=98765)
    dense = evaluate(EASE(l2=500.0, device="cpu").fit(split.train), split, k=100, metrics=("ndcg",))
    model = SparseEASE(l2=500.0, density=0.1, device="cpu").fit(split.train)
    sparse = evaluate(model, split, k=100, metrics=("ndcg",))
    # Measured: dense EASE 0.4689, SparseEASE(density=0.1) 0.4683 (ratio 0.999); density 0.05: ratio 0.983
    assert model.weights_.nnz == model.neighbours_ * split.train.n_items
    assert model.neighbours_ == round(0.1 * split.train.n_items)
    assert sparse.loc["ndcg@100", "mean"] >= 0.98 * dense.loc["ndcg@100", "mean"]


def test_auto_picks_dense_ease_where_it_fits_else_a_fixed_number_of_neighbours():
    from recae.models.auto import AUTO_NEIGHBOURS, auto_linear

    assert auto_linear(1_000) == (EASE, {})
    assert auto_linear(1_000, memory_budget_gb=1e-6) == (SparseEASE, {"density": 0.05})  # the default: ≤ 200 anyway
    cls, params = auto_linear(80_000)  # dense EASE needs 71.5 GiB; at density 0.05 the weights alone 12 GiB
    assert cls is SparseEASE and params["density"] * 80_000 == pytest.approx(AUTO_NEIGHBOURS)
    # the budget is checked at the dtype EASE will use: 20,000 items fit 8 GiB in float32 (4.5 GiB), not in float64
    assert auto_linear(20_000) == (EASE, {})
    assert auto_linear(20_000, dtype="float64")[0] is SparseEASE
