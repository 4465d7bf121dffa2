"""model.explain: exact attributions for the linear models, leave-one-out for the others."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recae.datasets.synthetic import synthetic
from recae.exceptions import DataError, NotFittedError, RecaeError, UnknownIdError
from recae.models import EASE, MODEL_REGISTRY, FactorEASE, LinearAE, MultDAE, MultVAE, SparseEASE


@pytest.fixture(scope="module")
def data():
    return synthetic(n_users=300, n_items=120, random_state=0)


def _linear(data):
    return {"EASE": EASE(l2=10.0, device="cpu").fit(data),
            "EASE-dropout": EASE(l2=10.0, dropout=0.3, device="cpu").fit(data),
            "LinearAE": LinearAE(rank=16, l2=10.0, device="cpu").fit(data),
            "SparseEASE": SparseEASE(l2=10.0, density=0.2, device="cpu").fit(data),
            "FactorEASE": FactorEASE(rank=16, epochs=2, device="cpu", random_state=0).fit(data)}


@pytest.fixture(scope="module")
def linear(data):
    return _linear(data)


@pytest.fixture(scope="module")
def vae(data):
    return MultVAE(epochs=2, device="cpu", random_state=0).fit(data)


def one_hot(model, cols, vals):
    return sp.csr_matrix((np.asarray(vals, np.float32), (np.zeros(len(cols), int), cols)), shape=(1, model.n_items_))


ADDITIVE = sorted(n for n, cls in MODEL_REGISTRY.items() if getattr(cls, "additive_scores", False))


def test_the_linear_models_are_marked_additive_and_the_neural_ones_not():
    assert {"EASE", "FactorEASE", "LinearAE", "SparseEASE"} <= set(ADDITIVE)
    assert not {"MultDAE", "MultVAE", "RecVAE", "CDAE", "Blend", "Popularity"} & set(ADDITIVE)


@pytest.mark.parametrize("name", ADDITIVE)
def test_models_marked_additive_are_linear_in_the_history(linear, data, name):
    # the flag is what makes explain() claim exactness: check it against the scores of every marked model
    if name in linear:
        models = {k: m for k, m in linear.items() if k.split("-")[0] == name}
    else:
        model = MODEL_REGISTRY[name]()
        small = {k: v for k, v in {"device": "cpu", "rank": 16, "epochs": 2, "l2": 10.0}.items()
                 if k in model.get_params()}
        try:
            models = {name: model.set_params(**small).fit(data)}
        except RecaeError as exc:  # a wrapped package that is not installed here
            pytest.skip(f"{name} cannot be fitted here: {exc}")
    rng = np.random.default_rng(0)
    for label, model in models.items():
        x = sp.random(3, model.n_items_, density=0.1, random_state=1, dtype=np.float32, format="csr")
        y = sp.random(3, model.n_items_, density=0.1, random_state=2, dtype=np.float32, format="csr")
        a, b = rng.uniform(0.5, 2.0, size=2)
        lhs = model.score((a * x + b * y).tocsr())
        rhs = a * model.score(x) + b * model.score(y)
        np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-5, err_msg=label)


@pytest.mark.parametrize("name", ["EASE", "EASE-dropout", "LinearAE", "SparseEASE", "FactorEASE"])
def test_exact_contributions_add_up_to_the_score(linear, name):
    model = linear[name]
    user = model.user_ids_[7]
    ids, scores = model.recommend(user, n=5)
    out = model.explain(user, ids, n=1000)
    assert [e["item"] for e in out] == ids.tolist()
    row = model.user_items_[7]
    for e, s in zip(out, scores):
        assert e["method"] == "exact" and e["baseline"] == pytest.approx(0.0, abs=1e-6)
        total = e["baseline"] + sum(c["contribution"] for c in e["contributions"])
        assert total == pytest.approx(float(s), rel=1e-4, abs=1e-5)
        assert e["score"] == pytest.approx(float(s), rel=1e-5, abs=1e-6)
        assert len(e["contributions"]) == row.nnz  # n=1000 lists the whole history
        assert sum(abs(c["share"]) for c in e["contributions"]) == pytest.approx(1.0)
        contribs = [c["contribution"] for c in e["contributions"]]
        assert contribs == sorted(contribs, reverse=True)


def test_exact_contribution_is_the_one_item_score_with_its_value(linear):
    # a rated history: item i's contribution to j is the score at j of the row holding only x_i
    model = linear["EASE"]
    hist = {model.item_ids_[3]: 2.0, model.item_ids_[10]: 0.5, model.item_ids_[40]: 1.0}
    target = model.item_ids_[55]
    (e,) = model.explain(hist, [target], n=10)
    col = 55
    for c in e["contributions"]:
        i = int(np.flatnonzero(model.item_ids_ == c["item"])[0])
        expected = model.score(one_hot(model, [i], [hist[c["item"]]]))[0, col]
        assert c["contribution"] == pytest.approx(float(expected), rel=1e-5, abs=1e-7)
    full = model.score(one_hot(model, [3, 10, 40], [2.0, 0.5, 1.0]))[0, col]
    assert sum(c["contribution"] for c in e["contributions"]) == pytest.approx(float(full), rel=1e-4, abs=1e-6)


def test_leave_one_out_is_the_drop_when_the_item_is_removed(vae):
    model = vae
    assert not getattr(model, "additive_scores", False)
    cols = [2, 9, 30, 31, 77]
    hist = [model.item_ids_[c] for c in cols]
    target = 100
    (e,) = model.explain(hist, [model.item_ids_[target]], n=10)
    assert e["method"] == "leave-one-out"
    full = model.score(one_hot(model, cols, [1.0] * 5))[0, target]
    assert e["score"] == pytest.approx(float(full), rel=1e-5, abs=1e-6)
    assert len(e["contributions"]) == 5
    for c in e["contributions"]:
        rest = [k for k in cols if model.item_ids_[k] != c["item"]]
        without = model.score(one_hot(model, rest, [1.0] * 4))[0, target]
        assert c["contribution"] == pytest.approx(float(full - without), rel=1e-4, abs=1e-6)


def test_leave_one_out_equals_exact_on_a_linear_model(linear):
    model = linear["LinearAE"]
    user = model.user_ids_[3]
    ids, _ = model.recommend(user, n=3)
    exact = model.explain(user, ids, n=100, method="exact")
    loo = model.explain(user, ids, n=100, method="leave-one-out")
    for a, b in zip(exact, loo):
        da = {c["item"]: c["contribution"] for c in a["contributions"]}
        db = {c["item"]: c["contribution"] for c in b["contributions"]}
        assert da.keys() == db.keys()
        for k in da:
            assert db[k] == pytest.approx(da[k], rel=1e-3, abs=1e-5)


def test_explain_errors(data, vae, linear):
    with pytest.raises(DataError, match="exact explanations need"):
        vae.explain(vae.user_ids_[0], [vae.item_ids_[0]], method="exact")
    with pytest.raises(UnknownIdError, match="999999"):
        linear["EASE"].explain(linear["EASE"].user_ids_[0], [999999])
    with pytest.raises(UnknownIdError, match="999999"):
        linear["EASE"].explain(999999, [linear["EASE"].item_ids_[0]])
    with pytest.raises(DataError, match="n must be a positive integer"):
        linear["EASE"].explain(linear["EASE"].user_ids_[0], [linear["EASE"].item_ids_[0]], n=0)
    with pytest.raises(NotFittedError):
        EASE().explain(1, [1])
    with pytest.raises(DataError, match="method"):
        linear["EASE"].explain(linear["EASE"].user_ids_[0], [linear["EASE"].item_ids_[0]], method="magic")


def test_other_models_fall_back_to_leave_one_out(data):
    model = MultDAE(epochs=1, device="cpu", random_state=0).fit(data)
    (e,) = model.explain([model.item_ids_[1], model.item_ids_[2]], [model.item_ids_[5]])
    assert e["method"] == "leave-one-out" and len(e["contributions"]) == 2
    (e,) = model.explain([], [model.item_ids_[5]])  # an empty history explains nothing
    assert e["contributions"] == []


def test_an_interactions_history_is_a_history_not_a_user_id(linear, data):
    model = linear["EASE"]
    one = data.take_users([0])
    items = one.item_ids[one.matrix.indices]
    target = [i for i in model.item_ids_ if i not in set(items)][:2]
    values = dict(zip(items.tolist(), one.matrix.data.tolist()))
    assert model.explain(one, target) == model.explain(values, target)


def test_an_empty_history_is_explained_as_recommend_new_ranks_it(linear):
    model = linear["EASE"]
    ids, scores = model.recommend_new([], n=3)
    out = model.explain([], list(ids))
    assert [o["method"] for o in out] == ["popularity"] * 3 and all(o["contributions"] == [] for o in out)
    np.testing.assert_allclose([o["score"] for o in out], scores)
    with pytest.raises(DataError, match="method"):
        model.explain([], list(ids), method="shapley")


def test_a_training_user_with_an_empty_row_is_ranked_and_explained_by_popularity():
    from recae import Interactions
    X = sp.random(30, 12, density=0.3, format="csr", random_state=0)
    X.data[:] = 1.0
    X = sp.csr_matrix(X.toarray() * (np.arange(30) != 7)[:, None])  # user 7 has no training entries
    model = EASE(l2=1.0, device="cpu").fit(Interactions(X))
    ids, scores = model.recommend(7, n=3)
    new_ids, new_scores = model.recommend_new([], n=3)  # before: item index order, every score 0
    np.testing.assert_array_equal(ids, new_ids)
    np.testing.assert_allclose(scores, new_scores)
    out = model.explain(7, list(ids))
    assert [o["method"] for o in out] == ["popularity"] * 3
    np.testing.assert_allclose([o["score"] for o in out], scores, atol=1e-6)
    both, _ = model.recommend([7, 0], n=3)
    np.testing.assert_array_equal(both[0], ids)  # in a batch as alone
