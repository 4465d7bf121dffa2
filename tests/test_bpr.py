"""ImplicitBPR: the BPR fold-in for new users agrees with the factors BPR learned for known ones."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("implicit")

from recae.datasets import synthetic  # noqa: E402
from recae.models import ImplicitBPR  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    data = synthetic(n_users=300, n_items=100, random_state=1)
    return data, ImplicitBPR(factors=16, iterations=60, learning_rate=0.05).fit(data)


def test_fold_in_ranks_like_the_learned_user_factors(fitted):
    data, model = fitted
    users = data.user_ids[:50]
    known, _ = model.recommend(users, n=10)
    new, _ = model.recommend_new(data.take_users(np.arange(50)), n=10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(known, new)])
    assert overlap >= 0.5, overlap


def test_fold_in_is_deterministic_and_bias_only_without_history(fitted):
    data, model = fitted
    hist = data.take_users(np.arange(5))
    a, sa = model.recommend_new(hist, n=5)
    b, sb = model.recommend_new(hist, n=5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sa, sb)
    import scipy.sparse as sp

    zero = model._fold_in(sp.csr_matrix((1, data.n_items), dtype=np.float32))
    assert float(zero[0, :-1].abs().sum()) == 0.0 and float(zero[0, -1]) == 1.0


def test_a_history_folds_in_alike_whatever_else_is_in_the_call(fitted, tmp_path):
    """One shared stream of draws, mapped onto each row's positives: evaluate's batch size, a server's
    request grouping or a Blend's validation cannot move a user's factors (before, they did)."""
    data, model = fitted
    hist = data.take_users(np.arange(12))
    together = model._fold_in(hist.matrix)
    for i in (0, 5, 11):
        alone = model._fold_in(hist.matrix[i])
        np.testing.assert_allclose(alone[0].numpy(), together[i].numpy(), rtol=1e-5, atol=1e-6)
    # the training penalty is the fitted one, whatever set_params did since (save would refuse it)
    model.set_params(regularization=100.0)
    np.testing.assert_array_equal(model._fold_in(hist.matrix).numpy(), together.numpy())
    model.set_params(regularization=0.01)
    # the fold-in's own settings are read when it runs: a fitted model takes new ones and saves them
    model.set_params(fold_in_steps=20).save(tmp_path / "b.recae")
    model.set_params(fold_in_steps=100)
    import recae
    assert recae.load(tmp_path / "b.recae").fold_in_steps == 20
