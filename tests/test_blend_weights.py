"""The Blend's weight search on its own: any per-user metric of the weights."""

from __future__ import annotations

import numpy as np
import pytest

from recae.models.blend_weights import search_weights


def peaked(target, n_users=5):
    """Every user's metric is 1 minus the squared distance of the weights from ``target``."""
    target = np.asarray(target, dtype=np.float64)
    calls = []

    def users(w):
        calls.append(np.round(w, 9).tolist())
        return np.full(n_users, 1.0 - float(((w - target) ** 2).sum()))
    return users, calls


@pytest.mark.parametrize("target", [[0.4, 0.1, 0.3, 0.2], [0.0, 0.0, 1.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
def test_coordinate_ascent_reaches_a_peak_on_the_grid(target):
    users, _ = peaked(target)
    w, score = search_weights(users, 4, grid_step=0.05, bags=0)
    np.testing.assert_allclose(w, target, atol=1e-9)
    assert score == pytest.approx(1.0)


def test_up_to_three_weights_take_the_best_grid_point():
    users, calls = peaked([0.3, 0.3, 0.4])
    w, _ = search_weights(users, 3, grid_step=0.1, bags=0)
    np.testing.assert_allclose(w, [0.3, 0.3, 0.4], atol=1e-9)
    assert len(calls) >= 66  # the whole 0.1 simplex grid of three weights: C(12, 2) points


def test_resamples_of_identical_users_pick_the_same_weights():
    users, _ = peaked([0.5, 0.2, 0.2, 0.1])
    bagged, _ = search_weights(users, 4, bags=7, random_state=3)
    once, _ = search_weights(users, 4, bags=0)
    np.testing.assert_allclose(bagged, once, atol=1e-9)


def test_users_without_a_metric_are_not_counted():
    # user 0 prefers the first weight, user 1 (NaN: no target) would prefer the second
    def users(w):
        return np.array([w[0], np.nan, w[0] - 0.5 * w[1]])
    w, score = search_weights(users, 4, bags=0)
    np.testing.assert_allclose(w, [1.0, 0.0, 0.0, 0.0])
    assert score == pytest.approx(1.0)


def test_never_under_the_best_single_weight():
    # user 0 scores only with weight 0 alone, user 1 only with weight 1 alone: a resample where
    # user 1 counts more picks weight 1, and the bags' mean of the two corners scores 0 for both
    def users(w):
        return np.array([float(np.isclose(w[0], 1.0)), 0.9 * float(np.isclose(w[1], 1.0))])
    w, score = search_weights(users, 4, bags=20, random_state=0)
    assert w.tolist() == [1.0, 0.0, 0.0, 0.0] and score == pytest.approx(0.5)
