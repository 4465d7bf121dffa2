"""Property-based checks of the recommend API on random logs and random requests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recae
from recae.exceptions import RecaeError

ids = st.one_of(st.integers(-5, 40), st.text(alphabet="abcxyz", min_size=1, max_size=3))


@st.composite
def logs(draw):
    """A small interaction log with ids of one type (ints or strings) and possible duplicates."""
    as_str = draw(st.booleans())
    n = draw(st.integers(1, 60))
    users = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n))
    if as_str:
        users, items = [f"u{u}" for u in users], [f"i{i}" for i in items]
    return pd.DataFrame({"user": users, "item": items})


MODELS = [lambda: recae.Popularity(device="cpu"), lambda: recae.EASE(l2=1.0, device="cpu")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=logs(), which=st.sampled_from([0, 1]), n=st.integers(-2, 25),
       asked=st.lists(ids, min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_recommend_properties(df, which, n, asked, seed):
    data = recae.Interactions.from_pandas(df)
    model = MODELS[which]().fit(data)
    users = [u for u in data.user_ids[:3]]
    try:
        ids_, scores = model.recommend(users, n=n)
    except RecaeError:
        assert n <= 0  # the only reason to refuse known users
        return
    assert ids_.shape == scores.shape and ids_.shape[0] == len(users)
    for row, user in enumerate(users):
        valid = np.isfinite(scores[row])
        got = ids_[row][valid]
        assert len(set(got.tolist())) == len(got)  # unique
        seen = set(data.item_ids[data.matrix[data.user_index(user)[0]].indices].tolist())
        assert not seen & set(got.tolist())  # seen items excluded
        assert np.all(np.diff(scores[row][valid]) <= 1e-6)  # sorted
        assert not np.isnan(scores[row]).any()
    # the same log in another row order gives the same recommendations
    shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    again = MODELS[which]().fit(recae.Interactions.from_pandas(shuffled)).recommend(users, n=n)
    np.testing.assert_array_equal(again[0], ids_)
    # arbitrary requested ids: either an answer or a documented error, never a raw exception
    try:
        model.recommend(asked, n=max(n, 1), items=asked[:2], exclude=asked[-1:])
    except RecaeError:
        pass
    try:
        model.recommend_new(asked, n=max(n, 1), unknown="ignore")
    except RecaeError:
        pass
