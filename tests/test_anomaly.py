"""AUROC, threshold choice and the per-user anomaly score of recommenders."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recae
from recae.anomaly import auroc, choose_threshold, user_anomaly_scores
from recae.exceptions import DataError, NotFittedError, ShapeError


def test_auroc_hand_computed():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered correctly
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # a tie counts one half: (0.5 + 1) / 2
    assert auroc([1.0, 1.0, 2.0], [False, True, True]) == pytest.approx(0.75)
    assert auroc([3, 2, 1], [1, 0, 0]) == 1.0
    assert auroc([3, 2, 1], [0, 1, 1]) == 0.0


def test_auroc_matches_pair_count():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.random(60) < 0.3
    pos, neg = s[y], s[~y]
    expected = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert auroc(s, y) == pytest.approx(expected)


def test_auroc_errors():
    with pytest.raises(DataError, match="both classes"):
        auroc([1, 2], [1, 1])
    with pytest.raises(ShapeError, match="same length"):
        auroc([1, 2, 3], [1, 0])
    with pytest.raises(DataError, match="NaN"):
        auroc([np.nan, 1.0], [1, 0])


@pytest.mark.parametrize("labels, hint", [
    ([1, 1, 1, -1, -1], r"\[-1\] \(scikit-learn's outlier labels\? use labels == -1\)"),
    (["no", "no", "yes", "no", "no"], r"\['no', 'yes'\]"),
    ([np.nan, 0, 0, 0, 1], r"\[nan\]"),
    ([True, False, None, True, False], r"\[None\]"),
])
def test_labels_other_than_bools_or_0_1_are_refused(labels, hint):
    """Before, any non-zero label counted as an anomaly: ±1, strings and NaN flagged everything."""
    scores = [0.1, 0.2, 0.3, 0.9, 1.0]
    with pytest.raises(DataError, match=r"labels must be True/False or 1/0 \(1: anomaly\); got values such as " + hint):
        choose_threshold(scores, labels)
    with pytest.raises(DataError, match="labels must be True/False or 1/0"):
        auroc(scores, labels)
    assert choose_threshold(scores, [0, 0, 0, 1, 1]) == pytest.approx(0.6)
    with pytest.raises(DataError, match="labels mark every score as an anomaly"):
        choose_threshold(scores, [1] * 5)
    with pytest.raises(DataError, match=r"max_false_positive_rate must be a number in \(0, 1\); got '0.1'"):
        choose_threshold(scores, max_false_positive_rate="0.1")


def test_choose_threshold():
    normal = np.arange(100, dtype=float)
    t = choose_threshold(normal, max_false_positive_rate=0.05)
    assert (normal > t).sum() == 5
    scores = np.array([0.1, 0.2, 0.3, 0.9, 1.0])
    labels = np.array([0, 0, 0, 1, 1], bool)
    assert choose_threshold(scores, labels) == pytest.approx(0.6)  # midway between the classes: F1 = 1
    with pytest.raises(DataError, match="no anomalies"):
        choose_threshold(scores, np.zeros(5, bool))
    with pytest.raises(DataError, match="max_false_positive_rate"):
        choose_threshold(scores, max_false_positive_rate=1.5)


def _planted(n_structured=240, n_random=12, n_items=120, n_groups=4, per_user=12, seed=0):
    """Users who each pick items from one group of the catalogue, plus users who pick at random."""
    rng = np.random.default_rng(seed)
    size = n_items // n_groups
    rows, cols = [], []
    for u in range(n_structured):
        g = u % n_groups
        rows += [u] * per_user
        cols += list(g * size + rng.choice(size, per_user, replace=False))
    for u in range(n_structured, n_structured + n_random):
        rows += [u] * per_user
        cols += list(rng.choice(n_items, per_user, replace=False))
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_structured + n_random, n_items))
    planted = np.r_[np.zeros(n_structured, bool), np.ones(n_random, bool)]
    return X, planted


@pytest.fixture(scope="module")
def planted_dae():
    torch.set_num_threads(1)
    X, planted = _planted()
    model = recae.MultDAE(hidden_dims=(32,), epochs=30, batch_size=32, lr=3e-3, device="cpu", random_state=0).fit(X)
    return model, X, planted


def test_random_users_score_higher_nll(planted_dae):
    model, X, planted = planted_dae
    s = user_anomaly_scores(model, X)
    assert s.shape == (X.shape[0],) and s.dtype == np.float32 and np.all(np.isfinite(s))
    assert s[planted].mean() > s[~planted].mean() + 0.5
    assert auroc(s, planted) >= 0.95


def test_new_users_score_higher_rank(planted_dae):
    model, _, _ = planted_dae
    Y, planted = _planted(seed=2)  # users the model never saw
    s = user_anomaly_scores(model, Y, method="rank")
    assert np.all((s >= 0) & (s <= 1))
    assert auroc(s, planted) >= 0.95  # measured 1.0
    assert s[~planted].mean() < 0.15 and s[planted].mean() > 0.2  # measured 0.095 and 0.28


def test_rank_and_nll_with_ease_on_new_users():
    X, _ = _planted(seed=1)
    Y, planted = _planted(seed=2)
    model = recae.EASE(l2=100.0).fit(X)
    for method in ("rank", "nll"):
        assert auroc(user_anomaly_scores(model, Y, method=method), planted) >= 0.95  # measured 1.0 for both


def test_nll_equals_hand_computation(planted_dae):
    model, X, _ = planted_dae
    row = X[3]
    logits = torch.as_tensor(model.score(row)[0], dtype=torch.float64)
    expected = -torch.log_softmax(logits, 0)[row.indices].mean().item()
    assert user_anomaly_scores(model, row)[0] == pytest.approx(expected, rel=1e-4)


def test_empty_user_is_nan_and_bad_input(planted_dae):
    model, X, _ = planted_dae
    Y = sp.vstack([X[:2], sp.csr_matrix((1, X.shape[1]), dtype=np.float32)]).tocsr()
    s = user_anomaly_scores(model, Y)
    assert np.isfinite(s[:2]).all() and np.isnan(s[2])
    with pytest.raises(ShapeError):
        user_anomaly_scores(model, sp.csr_matrix((2, X.shape[1] + 1), dtype=np.float32))
    with pytest.raises(DataError, match="method"):
        user_anomaly_scores(model, X, method="zscore")
    with pytest.raises(NotFittedError):
        user_anomaly_scores(recae.MultDAE(), X)
