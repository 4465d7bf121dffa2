"""AutoRec and BiasedMF: masked loss, prediction with fallbacks, rating checks, persistence, ML-100K floor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import recae
from recae import Interactions
from recae.data.splits import HoldoutSplit
from recae.exceptions import DataError, NotFittedError, ShapeError
from recae.metrics import rmse
from recae.models.autorec import AutoRec
from recae.models.biased_mf import BiasedMF
from recae.models.ratings import RatingRows, masked_sse

from conftest import require_data

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(hidden=8, epochs=30, batch_size=4, lr=1e-2, device="cpu", random_state=0)


def ratings_log(n_users=12, n_items=9, density=0.5, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    df = pd.DataFrame({"user": [f"u{u}" for u in users], "item": [f"i{i}" for i in items],
                       "rating": rng.integers(1, 6, len(users)).astype(float)})
    return Interactions.from_pandas(df, rating="rating")


@pytest.fixture(scope="module")
def log():
    return ratings_log()


@pytest.fixture(scope="module")
def fitted(log):
    return AutoRec(**TINY).fit(log)


# ---------------------------------------------------------------------- masked loss
def test_masked_sse_value_and_gradient_ignore_unobserved():
    values = torch.tensor([[5.0, 0.0, 3.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])  # (1, 2) is an observed rating of 0
    pred = torch.tensor([[4.0, 9.0, 3.5], [-7.0, 2.0, 0.5]], requires_grad=True)
    loss = masked_sse(pred, values, mask)
    assert loss.item() == pytest.approx(1.0 + 0.25 + 1.0 + 0.25)
    loss.backward()
    expected = torch.tensor([[-2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    torch.testing.assert_close(pred.grad, expected)


def test_rating_rows_mask_comes_from_structure_not_values():
    X = sp.csr_matrix((np.array([0.0, 4.0, 2.0], np.float32), np.array([0, 2, 1]), np.array([0, 2, 3])), shape=(2, 3))
    values, mask = RatingRows(X, torch.device("cpu")).gather(torch.tensor([1, 0]))
    torch.testing.assert_close(values, torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 4.0]]))
    torch.testing.assert_close(mask, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]))


@pytest.mark.parametrize("orient", ["item", "user"])
def test_training_gradient_never_reaches_unobserved_outputs(orient):
    """A user nobody rated in the batch gets exactly zero gradient on its decoder bias (I-AutoRec)."""
    X = sp.csr_matrix(np.array([[5, 0, 3, 0], [4, 0, 0, 1], [0, 0, 0, 0], [1, 0, 2, 0]], dtype=np.float32))
    model = AutoRec(orient=orient, hidden=3, l2=10.0, epochs=1, device="cpu")
    model.fit(X)
    rows = model._training_rows(X)
    loader = RatingRows(rows, model.device_)

    class Ctx:
        pass

    ctx = Ctx()
    ctx.loader = loader
    model.module_.train()
    model.module_.zero_grad()
    batch = loader.gather(torch.arange(rows.shape[0]))
    model._loss(ctx, batch, torch.arange(rows.shape[0])).backward()
    dec_bias = model.module_["decoder"].bias.grad
    never = np.flatnonzero(np.diff(rows.tocsc().indptr) == 0)  # output units no vector observes
    assert len(never) >= 1  # U-AutoRec: item 1; I-AutoRec: user 2
    assert torch.all(dec_bias[torch.as_tensor(never)] == 0)
    assert torch.all(model.module_["decoder"].weight.grad[torch.as_tensor(never)] == 0)
    observed = np.setdiff1d(np.arange(rows.shape[1]), never)
    assert torch.all(dec_bias[torch.as_tensor(observed)] != 0)


def test_full_batch_loss_is_the_mean_squared_error_on_observed_ratings(log):
    model = AutoRec(**dict(TINY, l2=0.0, epochs=2)).fit(log)
    rows = model._training_rows(log.matrix)

    class Ctx:
        loader = RatingRows(rows, model.device_)

    with torch.no_grad():
        loss = model._loss(Ctx, Ctx.loader.gather(torch.arange(rows.shape[0])), torch.arange(rows.shape[0]))
    # hand-computed: reconstruct each item vector, read it at the observed users only
    dense = torch.as_tensor(rows.toarray())
    with torch.no_grad():
        recon = model._forward(dense).numpy()
    coo = rows.tocoo()
    assert loss.item() == pytest.approx(np.mean((recon[coo.row, coo.col] - coo.data) ** 2), rel=1e-5)


# ---------------------------------------------------------------------- predict
def test_predict_known_pairs_match_reconstruction_and_are_clipped(fitted, log):
    users = np.repeat(log.user_ids, log.n_items)
    items = np.tile(log.item_ids, log.n_users)
    pred = fitted.predict(users, items)
    assert pred.shape == (log.n_users * log.n_items,) and pred.dtype == np.float32
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    train_scores = fitted.score_users(np.arange(log.n_users)).numpy()
    np.testing.assert_allclose(pred, np.clip(train_scores, 1, 5).ravel(), rtol=1e-5, atol=1e-5)
    assert isinstance(fitted.predict(log.user_ids[0], log.item_ids[0]), float)
    one_user = fitted.predict(log.user_ids[2], log.item_ids)
    np.testing.assert_allclose(one_user, pred[2 * log.n_items: 3 * log.n_items], rtol=1e-6)


def test_predict_unknown_ids_fall_back_to_means(fitted, log):
    X = log.matrix
    user_mean = X[1].data.mean()
    item_mean = X[:, 4].data.mean()
    pred = fitted.predict(["nobody", log.user_ids[1], "nobody"], [log.item_ids[4], "no-item", "no-item"])
    np.testing.assert_allclose(pred, [item_mean, user_mean, X.data.mean()], rtol=1e-6)


def test_predict_clips_to_declared_range():
    log = ratings_log(seed=1)
    model = AutoRec(**dict(TINY, rating_range=(2.0, 4.0))).fit(log.filter_entries((log.matrix.data >= 2)
                                                                                  & (log.matrix.data <= 4)))
    pred = model.predict(np.repeat(model.user_ids_, model.n_items_), np.tile(model.item_ids_, len(model.user_ids_)))
    assert pred.min() >= 2.0 and pred.max() <= 4.0
    assert model.rating_range_ == (2.0, 4.0)
    # fallbacks are clipped as well
    assert 2.0 <= model.predict("nobody", "no-item") <= 4.0


def test_predict_length_mismatch_and_unfitted():
    with pytest.raises(NotFittedError):
        AutoRec().predict([1], [2])
    model = AutoRec(**TINY).fit(ratings_log())
    with pytest.raises(ShapeError, match="same length"):
        model.predict(["u1", "u2"], ["i1", "i2", "i3"])
    with pytest.raises(ShapeError, match="same length"):  # a list of one id is a list, not a single id
        model.predict(["u1", "u2"], ["i1"])
    single = model.predict(["u1", "u2"], "i1")
    assert single.shape == (2,) and np.array_equal(single, model.predict(["u1", "u2"], ["i1", "i1"]))


# ---------------------------------------------------------------------- bad input
def test_log_without_ratings_column_is_refused():
    df = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1]})
    with pytest.raises(DataError, match="no rating column"):
        AutoRec(**TINY).fit(Interactions.from_pandas(df))
    with pytest.raises(DataError, match="rating"):
        BiasedMF(device="cpu").fit(ratings_log().binarize(3))


def test_nan_ratings_are_refused_naming_the_column():
    df = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1], "stars": [4.0, np.nan, 3.0]})
    with pytest.raises(DataError, match="'stars'.*NaN"):
        Interactions.from_pandas(df, rating="stars")
    with pytest.raises(DataError, match="NaN"):
        AutoRec(**TINY).fit(sp.csr_matrix(np.array([[1.0, np.nan], [2.0, 3.0]])))


def test_ratings_outside_declared_scale_are_refused():
    log = ratings_log()
    with pytest.raises(DataError, match=r"rating column has \d+ value\(s\) outside the declared scale rating_range=\(1.0, 4.0\)"):
        AutoRec(**dict(TINY, rating_range=(1, 4))).fit(log)
    with pytest.raises(DataError, match="rating_range"):
        AutoRec(**dict(TINY, rating_range=(5, 1))).fit(log)
    with pytest.raises(DataError, match="orient"):
        AutoRec(orient="items").fit(log)
    with pytest.raises(DataError, match="valid_metric"):
        AutoRec(valid_metric="ndcg@10").fit(log)


def test_recommend_new_needs_ratings(fitted, log):
    with pytest.raises(DataError, match="dict item→rating"):
        fitted.recommend_new(list(log.item_ids[:3]))
    ids, scores = fitted.recommend_new({log.item_ids[0]: 5.0, log.item_ids[1]: 1.0}, n=3)
    assert len(ids) == 3 and log.item_ids[0] not in ids


def test_recommend_ranks_unseen_items_by_predicted_rating(fitted, log):
    ids, scores = fitted.recommend(log.user_ids[0], n=log.n_items)
    seen = set(log.item_ids[log.matrix[0].indices])
    assert not seen & set(ids)
    pred = fitted.predict(log.user_ids[0], ids)
    np.testing.assert_allclose(np.clip(scores, 1, 5), pred, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- fold-in
def test_u_autorec_fold_in_is_exact_and_i_autorec_fold_in_is_sensible(log):
    u = AutoRec(**dict(TINY, orient="user")).fit(log)
    np.testing.assert_allclose(u.score(log.matrix[:3]), u.score_users(np.arange(3)).numpy(), rtol=1e-5, atol=1e-5)
    i = AutoRec(**TINY).fit(log)
    folded = i.score(log.matrix)
    stored = i.score_users(np.arange(log.n_users)).numpy()
    # a re-solved output unit is not the trained one, but it predicts the user's own ratings about as well
    X = log.matrix.tocoo()
    err_folded = rmse(X.data, np.clip(folded[X.row, X.col], 1, 5))
    err_stored = rmse(X.data, np.clip(stored[X.row, X.col], 1, 5))
    assert err_folded < max(1.5 * err_stored, err_stored + 0.3)
    assert err_folded < rmse(X.data, np.full(X.nnz, X.data.mean()))


def test_biased_mf_bias_only_learns_the_item_means():
    rng = np.random.default_rng(0)
    item_quality = np.linspace(1.5, 4.5, 6)
    users, items = np.nonzero(rng.random((40, 6)) < 0.8)
    r = np.clip(np.round(item_quality[items] + rng.normal(0, 0.3, len(items))), 1, 5)
    X = sp.csr_matrix((r.astype(np.float32), (users, items)), shape=(40, 6))
    model = BiasedMF(factors=0, l2=1e-4, epochs=200, batch_size=8, lr=3e-2, device="cpu").fit(X)
    item_bias = model.module_["item_bias"].weight.detach().numpy().ravel()
    assert np.all(np.diff(item_bias) > 0)  # item order recovered
    pred = model.predict(np.zeros(6, int), np.arange(6))
    assert np.all(np.diff(pred) > 0)


# ---------------------------------------------------------------------- validation and persistence
def test_early_stopping_on_validation_rmse(log):
    split = HoldoutSplit(log.filter_entries(np.arange(log.nnz) % 5 != 0), log.filter_entries(np.arange(log.nnz) % 5 == 0),
                         log.filter_entries(np.arange(log.nnz) % 5 == 0))
    model = AutoRec(**dict(TINY, epochs=25, patience=3)).fit(split.train, valid=split)
    scores = [h["rmse"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmin(scores)) + 1
    assert len(scores) <= model.best_epoch_ + 3
    coo = split.valid.matrix.tocoo()
    pred = model.predict(split.valid.user_ids[coo.row], split.valid.item_ids[coo.col])
    assert rmse(coo.data, pred) == pytest.approx(min(scores), rel=1e-5)
    # a (fold_in, target) pair of new users scores the same way through fold-in
    pair = (split.train.matrix[:4], split.valid.matrix[:4])
    assert np.isfinite(model._validation_error(pair, "mae"))


@pytest.mark.parametrize("make", [lambda: AutoRec(**TINY), lambda: AutoRec(**dict(TINY, orient="user")),
                                  lambda: BiasedMF(factors=3, epochs=20, batch_size=4, device="cpu")],
                         ids=["I-AutoRec", "U-AutoRec", "BiasedMF"])
def test_save_load_roundtrip(make, log, tmp_path):
    model = make().fit(log)
    model.save(tmp_path / "m.recae")
    loaded = recae.load(tmp_path / "m.recae")
    assert type(loaded) is type(model) and loaded.rating_range_ == model.rating_range_
    users = np.concatenate([log.user_ids, ["nobody"]])
    items = np.resize(np.concatenate([log.item_ids[::-1], ["no-item"]]), len(users))
    np.testing.assert_array_equal(model.predict(users, items), loaded.predict(users, items))
    history = {log.item_ids[0]: 4.0, log.item_ids[3]: 2.0}
    np.testing.assert_array_equal(model.recommend_new(history, n=4)[0], loaded.recommend_new(history, n=4)[0])


# ---------------------------------------------------------------------- L-BFGS
def _objective(model, rows) -> float:
    """The full-batch training objective, computed by hand: masked SSE/n_observed + penalty."""
    with torch.no_grad():
        recon = model._forward(torch.as_tensor(rows.toarray())).numpy()
    coo = rows.tocoo()
    sq = sum(float(model.module_[k].weight.detach().pow(2).sum()) for k in ("encoder", "decoder"))
    return float(np.sum((recon[coo.row, coo.col] - coo.data) ** 2)) / rows.nnz + 0.5 * model.l2 / rows.nnz * sq


def test_lbfgs_minimises_the_full_batch_objective(log):
    rows = AutoRec()._training_rows(log.matrix)
    one = AutoRec(**dict(TINY, optimizer="lbfgs", lr=1.0, l2=1.0, epochs=1)).fit(log)
    many = AutoRec(**dict(TINY, optimizer="lbfgs", lr=1.0, l2=1.0, epochs=6)).fit(log)
    adam = AutoRec(**dict(TINY, l2=1.0, epochs=6)).fit(log)
    start = one.history_[0]["loss"]  # the objective at the initial weights
    assert _objective(one, rows) < start
    assert _objective(many, rows) < _objective(one, rows)
    assert _objective(many, rows) < _objective(adam, rows)
    # the batch size only bounds the dense block held at once: the objective is the same
    small = AutoRec(**dict(TINY, optimizer="lbfgs", lr=1.0, l2=1.0, epochs=1, batch_size=2)).fit(log)
    assert small.history_[0]["loss"] == pytest.approx(start, rel=1e-5)
    assert _objective(small, rows) == pytest.approx(_objective(one, rows), rel=1e-3)


def test_lbfgs_history_loss_is_the_objective(log):
    model = AutoRec(**dict(TINY, optimizer="lbfgs", lr=1.0, l2=3.0, epochs=3)).fit(log)
    rows = model._training_rows(log.matrix)
    # each epoch reports the objective where it started, so epoch 3's is that after epoch 2's
    after_two = AutoRec(**dict(TINY, optimizer="lbfgs", lr=1.0, l2=3.0, epochs=2)).fit(log)
    assert model.history_[2]["loss"] == pytest.approx(_objective(after_two, rows), rel=1e-4)


def test_lbfgs_biased_mf_trains(log):
    model = BiasedMF(factors=3, optimizer="lbfgs", lr=1.0, epochs=5, device="cpu").fit(log)
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < losses[0]
    coo = log.matrix.tocoo()
    assert np.all(np.isfinite(model.predict(log.user_ids[coo.row], log.item_ids[coo.col])))


def test_lbfgs_resume_continues_with_the_curvature_history(log, tmp_path):
    from recae.atomic import read_tensors
    from recae.train import CHECKPOINT

    params = dict(TINY, optimizer="lbfgs", lr=1.0, l2=1.0)
    full = AutoRec(**dict(params, epochs=4)).fit(log)
    AutoRec(**dict(params, epochs=2)).fit(log, checkpoint_dir=tmp_path)
    _, tensors = read_tensors(tmp_path / CHECKPOINT)
    assert {"opt0.0.old_dirs@0", "opt0.0.old_stps@0", "opt0.0.prev_flat_grad"} <= set(tensors)
    resumed = AutoRec(**dict(params, epochs=4)).fit(log, checkpoint_dir=tmp_path, resume=True)
    # the checkpoint's epochs, and the objective after them, exactly
    assert [h["loss"] for h in resumed.history_[:3]] == [h["loss"] for h in full.history_[:3]]
    # L-BFGS amplifies float rounding (the same weights, freshly allocated, can round a
    # matrix product differently), so "the same result" holds to rounding here, not bitwise
    np.testing.assert_allclose([h["loss"] for h in resumed.history_], [h["loss"] for h in full.history_], rtol=1e-5)
    for key, value in full.module_.state_dict().items():
        torch.testing.assert_close(resumed.module_.state_dict()[key], value, rtol=1e-3, atol=1e-3)


def test_lbfgs_is_only_for_explicit_models(log):
    with pytest.raises(DataError, match="optimizer must be one of"):
        recae.MultDAE(optimizer="lbfgs").fit(log.binarize(3))


# ---------------------------------------------------------------------- real data
def test_ml100k_u1_quality_floor(data_dir):
    """I-AutoRec on the official u1 split, briefly trained (~3 s): measured RMSE 0.911, item means 1.031."""
    require_data("ml-100k", "u1.base")
    from recae.datasets.movielens import movielens_official_split

    train, test = movielens_official_split(1, data_dir=data_dir, download=False)
    model = AutoRec(hidden=100, l2=100.0, epochs=8, batch_size=32, lr=3e-3, device="cpu").fit(train)
    t = test.to_pandas()
    err = rmse(t["rating"], model.predict(t["user"].to_numpy(), t["item"].to_numpy()))
    item_means = BiasedMF(factors=0, epochs=1, device="cpu").fit(train)  # only its fallback statistics are used
    baseline = rmse(t["rating"], item_means.item_mean_[test.item_index(t["item"])].clip(1, 5))
    assert err < 0.925, err
    assert err < baseline - 0.1, (err, baseline)


def test_a_rating_range_comes_back_a_pair_from_a_file(log, tmp_path):
    model = AutoRec(**{**TINY, "epochs": 2}, rating_range=(1.0, 5.0)).fit(log)
    model.save(tmp_path / "m.recae")
    assert recae.load(tmp_path / "m.recae").get_params() == model.get_params()  # (1.0, 5.0), not [1.0, 5.0]


def test_a_history_off_the_training_scale_is_refused():
    rng = np.random.default_rng(0)
    u, i = np.nonzero(rng.random((60, 30)) < 0.3)
    log = recae.Interactions.from_pandas(pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, len(u))}),
                                         rating="rating")
    model = recae.BiasedMF(factors=2, epochs=2, random_state=0, device="cpu", show_progress=False).fit(log)
    assert model.rating_range_ == (1.0, 5.0)  # seen in training, not declared
    for bad in (9.0, -3.0, 0.0):  # before: folded in as ratings the model never saw (scores past the scale)
        with pytest.raises(recae.DataError, match=r"history \(on the scale of the training ratings\).*outside"):
            model.recommend_new({int(log.item_ids[0]): bad}, n=3)
    ids, _ = model.recommend_new({int(log.item_ids[0]): 4.0}, n=3)
    assert len(ids) == 3


def test_an_empty_list_is_an_empty_history():
    """It holds no ratings to mistake for bare ids: the item-means fallback, as for {}."""
    model = AutoRec(**TINY).fit(ratings_log())
    for a, b in zip(model.recommend_new([], n=3), model.recommend_new({}, n=3)):
        np.testing.assert_array_equal(a, b)


def test_a_zero_rating_counts_on_a_scale_that_has_one():
    """For a rating model a 0 on a 0-10 scale is a rating: counted, unlike a model of positives' stored 0."""
    import scipy.sparse as sp
    X = sp.csr_matrix((np.array([0.0, 5.0, 10.0, 3.0, 7.0], np.float32), np.array([0, 1, 2, 0, 2]),
                       np.array([0, 3, 5])), shape=(2, 3))  # the first 0 stored
    model = AutoRec(**dict(TINY, rating_range=(0, 10))).fit(X)
    assert model.item_counts().tolist() == [2, 1, 2]
