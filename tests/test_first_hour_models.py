"""What a new user meets on the model side: count logs, empty or unknown histories, transposed input, busy CPUs."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import recae
from recae.exceptions import DataWarning, UnknownIdError


@pytest.fixture(scope="module")
def clicks() -> sp.csr_matrix:
    """A click log whose repeated clicks were summed: counts in the thousands on popular items."""
    rng = np.random.default_rng(0)
    k = 120_000
    items = (rng.zipf(1.2, size=k) - 1) % 1000
    users = rng.integers(0, 8000, k)
    counts = np.minimum(rng.zipf(1.3, size=k), 2000).astype(np.float32)
    X = sp.csr_matrix((counts, (users, items)), shape=(8000, 1000))
    X.sum_duplicates()
    return X


def test_ease_on_counts_falls_back_to_float64(clicks, caplog):
    assert clicks.data.max() > 1000
    with caplog.at_level(logging.WARNING, logger="recae.models.ease"):
        m = recae.EASE().fit(clicks)
    assert "singular in float32" in caplog.text and "counts" in caplog.text
    ref = recae.EASE(dtype="float64").fit(clicks)
    np.testing.assert_allclose(m.B_.numpy(), ref.B_.numpy(), rtol=0, atol=0)  # the same float64 solve


def test_ease_on_counts_over_budget_names_the_cause(clicks):
    budget = 3 * 1000 ** 2 * 4 / 2 ** 30 * 1.01  # float32 fits, float64 does not
    with pytest.raises(recae.DataError, match=r"values up to \d+ .*counts.*presence"):
        recae.EASE(memory_budget_gb=budget).fit(clicks)


@pytest.fixture(scope="module")
def shop():
    df = pd.DataFrame({"user": ["u1", "u1", "u2", "u2", "u3", "u4"], "item": ["a", "b", "b", "c", "b", "c"]})
    return recae.EASE(l2=1.0).fit(recae.Interactions.from_pandas(df, user="user", item="item"))


def test_empty_history_gets_the_most_popular_items(shop):
    ids, scores = shop.recommend_new([], n=3)
    assert list(ids) == ["b", "c", "a"] and list(scores) == [3.0, 2.0, 1.0]  # training users per item
    ids, _ = shop.recommend_new([], n=2, exclude=["b"])
    assert list(ids) == ["c", "a"]


def test_unknown_history_items_raise_or_warn_with_their_names(shop):
    with pytest.raises(UnknownIdError, match="SKU-83F8"):
        shop.recommend_new(["SKU-83F8"])
    with pytest.warns(DataWarning, match=r"left out 1 unknown item id\(s\) \['SKU-83F8'\]; no known item"):
        ids, _ = shop.recommend_new(["SKU-83F8"], unknown="ignore", n=3)
    assert list(ids) == ["b", "c", "a"]  # nothing known left: popularity, never arbitrary ids
    with pytest.warns(DataWarning, match=r"\['A'\]") as record:
        ids, _ = shop.recommend_new(["A", "a"], unknown="ignore", n=2)
    assert "no known item" not in str(record[0].message)
    np.testing.assert_array_equal(ids, shop.recommend_new(["a"], n=2)[0])


def test_a_batch_with_an_empty_row_ranks_it_by_popularity(shop):
    X = sp.csr_matrix((np.ones(1, np.float32), ([0], [0])), shape=(2, 3))  # row 0: item "a"; row 1: empty
    ids, _ = shop.recommend_new(X, n=2)
    np.testing.assert_array_equal(ids[0], shop.recommend_new(["a"], n=2)[0])
    assert list(ids[1]) == ["b", "c"]


def test_rating_models_keep_their_own_fallback():
    df = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [10, 20, 20, 30, 10], "rating": [5.0, 1.0, 4.0, 2.0, 3.0]})
    m = recae.BiasedMF(factors=2, epochs=2, device="cpu").fit(recae.Interactions.from_pandas(df, rating="rating"))
    ids, scores = m.recommend_new({}, n=3)
    np.testing.assert_allclose(scores, np.sort(m.item_mean_)[::-1], rtol=1e-6)  # item means, documented there


def test_a_wide_bare_matrix_warns_about_orientation():
    X = sp.random(5, 200, density=0.2, format="csr", random_state=0, dtype=np.float32)
    with pytest.warns(DataWarning, match=r"5 rows and 200 columns.*X\.T"):
        recae.Popularity().fit(X)


def test_neural_models_show_progress_on_a_terminal_by_default():
    for cls in (recae.MultDAE, recae.MultVAE, recae.CDAE, recae.RecVAE, recae.AutoRec, recae.BiasedMF,
                recae.ImageAutoencoder):
        assert cls().show_progress is None, cls


def test_a_busy_machine_is_reported(monkeypatch, caplog):
    from recae.train import warn_if_oversubscribed

    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    with caplog.at_level(logging.WARNING, logger="recae.train"):
        warn_if_oversubscribed("MultDAE", torch.device("cpu"))
    assert "torch.set_num_threads(1)" in caplog.text and "load of 8.0" in caplog.text
    caplog.clear()
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with caplog.at_level(logging.WARNING, logger="recae.train"):
        warn_if_oversubscribed("MultDAE", torch.device("cpu"))
    assert caplog.text == ""


def test_an_unknown_user_a_filter_removed_is_named_as_such(tmp_path):
    df = pd.DataFrame({"user": [f"u{u}" for u in range(20) for _ in range(u % 7 + 1)],
                       "item": [f"i{(u * 3 + j) % 15}" for u in range(20) for j in range(u % 7 + 1)]})
    data = recae.Interactions.from_pandas(df).filter(min_user=3)
    m = recae.EASE(l2=1.0).fit(data)
    with pytest.raises(UnknownIdError, match=r"\['u0'\] removed by filter\(min_user=3"):
        m.recommend("u0")
    with pytest.raises(UnknownIdError) as plain:
        m.recommend("nobody")
    assert "removed by" not in str(plain.value)
    m.save(tmp_path / "m.recae")
    with pytest.raises(UnknownIdError, match=r"\['u1'\] removed by filter"):  # the file keeps the record
        recae.load(tmp_path / "m.recae").recommend(["u1", "u2"])
