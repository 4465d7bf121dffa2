"""FactorEASE (factored EASE, ELSA-like): what it learns, its exact scores and loss, chunked ranking, files, limits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.nn.functional import normalize

import recae
from recae.data.batching import DeviceCSR, SparseRowLoader, SparseRows
from recae.datasets import synthetic
from recae.exceptions import DataError, MemoryBudgetError
from recae.models.factor_ease import FactorEASE
from recae.models.factor_parts import Gram, UnitRows
from recae.models.trained import Trained
from recae.train import CHECKPOINT

from conftest import require_data
from test_conformance import checkerboard

pytestmark = pytest.mark.usefixtures("one_thread")

N = 40
SMALL = dict(rank=4, epochs=30, batch_size=8, lr=0.03, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def board():
    return checkerboard(N)


@pytest.fixture(scope="module")
def fitted(board):
    return FactorEASE(**SMALL).fit(board)


def planted_first(model, board):
    ids, _ = model.recommend(board.user_ids, n=1)
    return np.array_equal(ids[:, 0], np.array([f"i{u:02d}" for u in range(N)], dtype=object))


def by_hand(model, X: sp.csr_matrix) -> np.ndarray:
    A = model.item_factors_.double().numpy()
    x = X.toarray().astype(np.float64)
    return x @ A @ A.T - x


def test_learns_the_checkerboard(fitted, board):
    assert planted_first(fitted, board)  # item u: the one unseen item of u's parity
    ids, _ = fitted.similar_items("i04", n=N // 2 - 1)
    assert all(int(i[1:]) % 2 == 0 for i in ids)  # same-parity items are the nearest factors


def test_factor_rows_have_unit_norm_and_zero_diagonal(fitted):
    A = fitted.item_factors_
    assert A.shape == (N, 4)
    torch.testing.assert_close(A.norm(dim=1), torch.ones(N), rtol=0, atol=1e-6)
    B = A @ A.T - torch.eye(N)
    torch.testing.assert_close(B.diagonal(), torch.zeros(N), rtol=0, atol=1e-6)


def test_one_ranking_normalises_A_once_and_keeps_nothing(board, monkeypatch):
    from recae.models import ranking
    model = FactorEASE(**{**SMALL, "epochs": 2}).fit(board)
    whole = model.recommend(board.user_ids, n=5)
    calls = []
    real = type(model.module_).factors
    monkeypatch.setattr(type(model.module_), "factors", lambda self, *a: calls.append(a) or real(self, *a))
    monkeypatch.setattr(ranking, "row_chunks", lambda n_rows, n_cols: ((a, min(a + 3, n_rows)) for a in range(0, n_rows, 3)))
    blocks = model.recommend(board.user_ids, n=5)  # 14 row blocks of 3 users
    assert len(calls) == 1  # not once per block
    np.testing.assert_array_equal(blocks[0], whole[0])
    np.testing.assert_allclose(blocks[1], whole[1], rtol=1e-6)  # another block size rounds another way
    assert model._ranking_factors is None  # nothing held between rankings
    with torch.no_grad():  # W changes: the next ranking must see it
        model.module_.weight.add_(torch.randn(model.module_.weight.shape, generator=torch.Generator().manual_seed(1)))
    _, scores = model.recommend(board.user_ids[0], n=5)
    expected = by_hand(model, model.user_items_[:1])[0]
    expected[model.user_items_[:1].indices] = -np.inf
    np.testing.assert_allclose(scores, np.sort(expected)[::-1][:5], rtol=1e-5, atol=1e-5)


def test_score_rows_is_x_A_At_minus_x(fitted, board):
    X = board.matrix[:7]
    np.testing.assert_allclose(fitted.score_rows(X).numpy(), by_hand(fitted, X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fitted.score(X), by_hand(fitted, X), rtol=1e-5, atol=1e-5)
    # a new user with a history the model never saw as a row: the same formula, no training
    new = sp.csr_matrix(np.eye(1, N, 3, dtype=np.float32) + np.eye(1, N, 9, dtype=np.float32))
    np.testing.assert_allclose(fitted.score_rows(new).numpy(), by_hand(fitted, new), rtol=1e-5, atol=1e-5)


def test_similarity_is_the_cosine_of_factors(fitted):
    A = fitted.item_factors_.double().numpy()
    np.testing.assert_allclose(fitted.similarity_rows(np.array([2, 5])).numpy(), A[[2, 5]] @ A.T, atol=1e-6)
    ids, scores = fitted.similar_items("i05", n=3)
    np.testing.assert_allclose(scores, np.sort(np.delete(A[5] @ A.T, 5))[::-1][:3], atol=1e-6)


def test_recommend_new_equals_recommend_exactly(fitted, board):
    for u in (0, 5, 12, 33):
        history = list(board.item_ids[board.matrix[u].indices])
        ids, scores = fitted.recommend(board.user_ids[u], n=10)
        new_ids, new_scores = fitted.recommend_new(history, n=10)
        np.testing.assert_array_equal(ids, new_ids)
        np.testing.assert_array_equal(scores, new_scores)


def test_item_chunked_ranking_equals_dense(board):
    dense = FactorEASE(**SMALL).fit(board)
    chunked = FactorEASE(**SMALL).fit(board)
    chunked.item_chunk = 7  # rank 40 items in chunks of 7, as for catalogues past item_chunk
    for kw in ({}, {"exclude_seen": False}):  # unmasked, the −x term must come out of each chunk too
        a_ids, a_scores = dense.recommend(board.user_ids, n=12, **kw)
        b_ids, b_scores = chunked.recommend(board.user_ids, n=12, **kw)
        np.testing.assert_array_equal(a_ids, b_ids)
        np.testing.assert_allclose(a_scores, b_scores, rtol=1e-5, atol=1e-5)
        c_ids, _ = chunked.recommend_new(board.take_users(np.arange(9)), n=12, **kw)
        np.testing.assert_array_equal(c_ids, a_ids[:9])


def test_exact_loss_is_the_normalised_squared_error(fitted, board):
    x = torch.as_tensor(board.matrix[:11].toarray())
    x[3] = 0  # an empty row counts 0, as with the reference's normalisation of zero vectors
    A = fitted.item_factors_
    pred = x @ A @ A.T - x
    norm = torch.nn.functional.normalize
    direct = (norm(pred, dim=1) - norm(x, dim=1)).pow(2).sum(dim=1).mean()
    fitted.module_.train()
    try:
        loss = fitted._loss(None, x, torch.arange(11))  # a dense batch: h = x·A as a product
        fitted.dense_share = 2.0  # no batch is that dense: h from the nonzeros (embedding_bag)
        bagged = fitted._loss(None, x, torch.arange(11))
    finally:
        fitted.module_.eval()
        del fitted.dense_share
    torch.testing.assert_close(loss, direct, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bagged, direct, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("negatives", [None, 10])
def test_sparse_batches_train_exactly_as_dense_ones(board, monkeypatch, negatives):
    """Training gets coordinates (SparseRows), never a dense batch × items block, and learns the same."""
    params = dict(SMALL, epochs=4, negatives=negatives)
    sparse = FactorEASE(**params)
    sparse.dense_share = 2.0  # h from the nonzeros, the large-catalogue path
    seen = []
    real = FactorEASE._loss
    monkeypatch.setattr(FactorEASE, "_loss", lambda self, state, x, rows: seen.append(type(x)) or real(self, state, x, rows))
    monkeypatch.setattr(DeviceCSR, "gather", lambda *a, **k: pytest.fail("a dense batch was gathered"))
    sparse.fit(board)
    assert set(seen) == {SparseRows}
    monkeypatch.undo()
    dense = FactorEASE(**params)
    dense.dense_share = 2.0
    # the trainer's default loader: dense batches, whose nonzeros the loss reads itself
    monkeypatch.setattr(FactorEASE, "_train", Trained._train)
    dense.fit(board)
    assert [h["loss"] for h in dense.history_] == [h["loss"] for h in sparse.history_]
    torch.testing.assert_close(dense.item_factors_, sparse.item_factors_, rtol=0, atol=0)


def test_custom_backwards_equal_autograd():
    w = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 4, dtype=torch.float64)
    torch.autograd.gradcheck(UnitRows.apply, (w,))
    torch.autograd.gradcheck(Gram.apply, (w,))
    for ours, reference in ((lambda v: UnitRows.apply(v).sum(dim=0) @ g, lambda v: normalize(v, dim=1).sum(dim=0) @ g),
                            (lambda v: (Gram.apply(v) * g).sum(), lambda v: (v.T @ v * g).sum())):
        a, = torch.autograd.grad(ours(w).sum(), w)
        b, = torch.autograd.grad(reference(w).sum(), w)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_sparse_row_loader_matches_the_dense_gather(board):
    X = board.matrix.copy()
    X.data[[0, 5]] = 0.0  # explicit zeros are left out, as a dense batch's nonzero() leaves them
    csr = DeviceCSR(X, torch.device("cpu"))
    rows = torch.tensor([5, 0, 17, 3])
    batch = SparseRowLoader(csr).gather(rows)
    assert batch.shape == (4, N) and bool((batch.vals != 0).all())
    assert bool((batch.rows[1:] >= batch.rows[:-1]).all())
    torch.testing.assert_close(batch.to_dense(), csr.gather(rows), rtol=0, atol=0)


def test_sampled_norm_estimate_is_unbiased(fitted, board):
    x = torch.as_tensor(board.matrix[:6].toarray())
    A = fitted.item_factors_
    exact = (x @ A @ A.T - x).pow(2).sum(dim=1)
    model = FactorEASE(**dict(SMALL, negatives=5)).fit(board)
    model.module_.load_state_dict(fitted.module_.state_dict())
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        draws = torch.stack([model._sampled_norm2(x.shape, *x.nonzero(as_tuple=True), x[x != 0], g)[1] for _ in range(4000)])
    torch.testing.assert_close(draws.mean(dim=0), exact, rtol=0.02, atol=1e-4)
    assert bool((draws.std(dim=0) > 0).all())  # a real sample, not the exact sum


def test_sampled_negatives_train_and_learn(board):
    model = FactorEASE(**dict(SMALL, negatives=0.25, epochs=60)).fit(board)
    assert np.isfinite([h["loss"] for h in model.history_]).all()
    assert planted_first(model, board)


def test_save_load_roundtrip(fitted, board, tmp_path):
    path = tmp_path / "fe.recae"
    fitted.save(path)
    loaded = recae.load(path)
    assert type(loaded) is FactorEASE and loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.score(board.matrix), fitted.score(board.matrix))
    a, b = fitted.recommend(board.user_ids, n=5), loaded.recommend(board.user_ids, n=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("negatives", [None, 10])
def test_resume_equals_uninterrupted(board, tmp_path, negatives):
    params = dict(SMALL, epochs=6, negatives=negatives)
    split = recae.strong_generalization_split(board, n_heldout=6, random_state=0)
    full = FactorEASE(**params).fit(split.train, valid=split)
    stop = lambda model, epoch, logs: epoch == 3  # noqa: E731
    FactorEASE(**params).fit(split.train, valid=split, checkpoint_dir=tmp_path, callbacks=[stop])
    assert (tmp_path / CHECKPOINT).exists()
    resumed = FactorEASE(**params).fit(split.train, valid=split, checkpoint_dir=tmp_path, resume=True)
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    for k, v in full.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[k], v, rtol=0, atol=0)


@pytest.fixture(scope="module")
def tail():
    """A small long-tail log: item counts from 1 to hundreds, so the popularity weights differ."""
    return synthetic(n_users=120, n_items=60, n_interactions=1500, popularity="longtail", random_state=3)


def test_popularity_exponent_weights_each_item_by_its_training_users(tail):
    model = FactorEASE(**dict(SMALL, epochs=5)).fit(tail)
    X = tail.matrix[:9]
    plain = by_hand(model, X)
    counts = np.diff(sp.csc_matrix(tail.matrix).indptr)
    assert counts.min() < counts.max()
    model.set_params(popularity_exponent=0.3)  # scoring only: no refit needed
    weighted = plain * (1.0 + counts) ** 0.3
    np.testing.assert_allclose(model.score_rows(X).numpy(), weighted, rtol=1e-5, atol=1e-5)
    ids, scores = model.recommend(tail.user_ids[:9], n=10)
    expect = np.where(X.toarray() > 0, -np.inf, weighted)
    np.testing.assert_array_equal(ids, tail.item_ids[np.argsort(-expect, axis=1, kind="stable")[:, :10]])
    np.testing.assert_allclose(scores, np.sort(expect, axis=1)[:, ::-1][:, :10], rtol=1e-5, atol=1e-5)
    chunked = FactorEASE(**dict(SMALL, epochs=5, popularity_exponent=0.3)).fit(tail)
    chunked.item_chunk = 7  # each chunk takes its slice of the weights
    np.testing.assert_array_equal(chunked.recommend(tail.user_ids[:9], n=10)[0], ids)
    new_ids, new_scores = chunked.recommend_new(tail.take_users(np.arange(9)), n=10)
    np.testing.assert_array_equal(new_ids, ids)
    model.set_params(popularity_exponent=0.0)
    np.testing.assert_allclose(model.score_rows(X).numpy(), plain, rtol=1e-5, atol=1e-5)


def test_popularity_exponent_moves_validation_not_training_and_travels_in_the_file(tail, tmp_path):
    split = recae.strong_generalization_split(tail, n_heldout=20, random_state=0)
    params = dict(SMALL, epochs=4, patience=None)
    plain = FactorEASE(**params).fit(split.train, valid=split)
    tilted = FactorEASE(**params, popularity_exponent=0.5).fit(split.train, valid=split)
    assert [h["loss"] for h in tilted.history_] == [h["loss"] for h in plain.history_]
    key = "ndcg@100"  # the valid_metric
    assert [h[key] for h in tilted.history_] != [h[key] for h in plain.history_]
    tilted.save(tmp_path / "fe.recae")
    loaded = recae.load(tmp_path / "fe.recae")
    assert loaded.popularity_exponent == 0.5
    np.testing.assert_array_equal(loaded.score(split.train.matrix), tilted.score(split.train.matrix))


@pytest.mark.parametrize("gamma", [float("nan"), 2.5, -3, True, "0.2", None])
def test_bad_popularity_exponent(board, gamma):
    with pytest.raises(DataError, match="popularity_exponent"):
        FactorEASE(**dict(SMALL, popularity_exponent=gamma)).fit(board)


@pytest.mark.parametrize("rank", [0, -3, 2.5, True, "8", None, N + 1])
def test_bad_rank(board, rank):
    with pytest.raises(DataError, match="rank"):
        FactorEASE(**dict(SMALL, rank=rank)).fit(board)


@pytest.mark.parametrize("negatives", [0, -1, 1.5, 0.0, True, "10"])
def test_bad_negatives(board, negatives):
    with pytest.raises(DataError, match="negatives"):
        FactorEASE(**dict(SMALL, negatives=negatives)).fit(board)


def test_a_float_of_one_or_more_is_no_share(board):
    """1.0 read as a count drew one negative item per batch, where a user may mean the whole catalogue."""
    with pytest.raises(DataError, match=r"negatives as a float is a share of the items, in \(0, 1\); got 1.0. "
                                        r"Pass a count as an int \(negatives=1\), or None for the exact loss"):
        FactorEASE(**dict(SMALL, negatives=1.0)).fit(board)
    assert FactorEASE(**dict(SMALL, epochs=1, negatives=np.int64(2))).fit(board).is_fitted
    with pytest.raises(recae.NotFittedError, match="this FactorEASE is not fitted yet"):  # not "no attribute 'module_'"
        FactorEASE().item_factors_


@pytest.mark.filterwarnings("ignore:training data has 3 rows")
def test_memory_budget_refuses_before_allocating(board, monkeypatch):
    def never(self, n_items):
        raise AssertionError("the factors were allocated")

    monkeypatch.setattr(FactorEASE, "_build", never)
    with pytest.raises(MemoryBudgetError, match=r"needs about 2\.98e-06 GiB.*memory_budget_gb=1e-06") as err:
        FactorEASE(**dict(SMALL, rank=4), memory_budget_gb=1e-6).fit(board)  # 5 × 40 × 4 × 4 bytes
    assert "5 × 40 × 4 × 4 bytes" in str(err.value)
    with pytest.raises(MemoryBudgetError, match=r"6 × 40 × 4 × 4 bytes: factors, gradient, normalised factors, "
                                                r"weight average and adam state"):  # the average is one more copy
        FactorEASE(**dict(SMALL, rank=4), weight_averaging=0.9, memory_budget_gb=1e-6).fit(board)
    with pytest.raises(DataError, match="memory_budget_gb"):
        FactorEASE(**SMALL, memory_budget_gb=0).fit(board)
    # a million items at rank 1024: 5 copies of 4 GB
    wide = sp.csr_matrix((np.ones(3, np.float32), ([0, 1, 2], [0, 1, 999_999])), shape=(3, 1_000_000))
    with pytest.raises(MemoryBudgetError, match=r"19\.1 GiB.*memory_budget_gb=8\.0 \(8\.0 GiB\)"):
        FactorEASE(rank=1024).fit(wide)


def test_ml100k_quality_floor(ml100k):
    """Defaults on ML-100K strong generalization, against dense EASE on the same split."""
    require_data("ml-100k", "u.data")
    data = ml100k.binarize(3.5).filter(min_user=5)
    split = recae.strong_generalization_split(data, 0.1, random_state=98765)
    ease = recae.evaluate(recae.EASE(l2=200.0).fit(split.train), split, k=(100,), metrics=("ndcg",))
    model = FactorEASE(epochs=20, random_state=0).fit(split.train, valid=split)
    ours = recae.evaluate(model, split, k=(100,), metrics=("ndcg",)).loc["ndcg@100", "mean"]
    # measured: 0.455 against EASE's 0.473 (0.96 ×); 75 validation users make early stopping noisy
    assert ours >= 0.43 and ours >= 0.93 * ease.loc["ndcg@100", "mean"], (ours, ease)


def test_the_sampled_loss_gives_one_model_per_seed_on_several_threads():
    torch.set_num_threads(2)  # the repeated-row gathers' backward is where threads could reorder sums
    log = synthetic(2000, 5000, 40000, popularity="longtail", random_state=0)
    fits = [FactorEASE(rank=16, epochs=2, batch_size=512, random_state=7, negatives=0.1, device="cpu").fit(log)
            for _ in range(2)]
    assert torch.equal(fits[0].item_factors_, fits[1].item_factors_)
