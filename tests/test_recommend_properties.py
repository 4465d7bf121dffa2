"""Property-based checks of the recommend API on random logs and random requests.

Every generated case has one documented outcome and the test asserts it: ``n <= 0`` is a
DataError naming ``n``; a request naming an id the model does not know is an
UnknownIdError naming that id; anything else is an answer of the documented shape.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recae
from recae.exceptions import DataError, UnknownIdError

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


def seen_items(data, user) -> set:
    return set(data.item_ids[data.matrix[data.user_index(user)[0]].indices].tolist())


def check_row(ids_row, scores_row, allowed: set, n_expected: int, pad) -> None:
    """One ranked row: ``n_expected`` distinct allowed ids best first, then ``pad`` / -inf padding."""
    valid = np.isfinite(scores_row)
    got = ids_row[valid].tolist()
    assert not np.isnan(scores_row).any()
    assert len(got) == n_expected, (got, allowed)
    assert len(set(got)) == len(got)  # unique
    assert set(got) <= allowed
    assert np.all(np.diff(scores_row[valid]) <= 1e-6)  # sorted
    assert np.all(scores_row[~valid] == -np.inf) and all(i == pad for i in ids_row[~valid].tolist())
    assert np.all(valid[:n_expected]) and not np.any(valid[n_expected:])  # padding only at the end


def assert_unknown(call, kind: str, unknown: list) -> None:
    """``call()`` raises an UnknownIdError about ``kind`` ids whose message names every id in ``unknown``."""
    with pytest.raises(UnknownIdError, match=f"unknown {kind} id") as info:
        call()
    message = str(info.value)
    missing = [u for u in unknown if repr(u) not in message]
    assert not missing, f"message does not name {missing}: {message!r}"


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(df=logs(), which=st.sampled_from([0, 1]), n=st.integers(-2, 25), draw=st.data(), seed=st.integers(0, 2**16))
def test_recommend_properties(df, which, n, draw, seed):
    data = recae.Interactions.from_pandas(df)
    # requested ids: the log's own ids (so the answering branch is reached) mixed with arbitrary ones
    known_users = st.sampled_from(sorted(set(df["user"].tolist())))
    known_items = st.sampled_from(sorted(set(df["item"].tolist())))
    asked = draw.draw(st.lists(known_users, min_size=1, max_size=3)
                      | st.lists(st.one_of(known_users, ids), min_size=1, max_size=4), label="asked")
    candidates = draw.draw(st.lists(known_items, min_size=1, max_size=4)
                           | st.lists(st.one_of(known_items, ids), min_size=1, max_size=4), label="items")
    excluded = draw.draw(st.lists(st.one_of(known_items, ids), max_size=2), label="exclude")
    history_ids = draw.draw(st.lists(st.one_of(known_items, ids), max_size=4), label="history")
    model = MODELS[which]().fit(data)
    users = list(data.user_ids[:3])
    item_set = set(data.item_ids.tolist())
    pad = None if data.item_ids.dtype == object else -1

    # ---- known users: n <= 0 is the only reason to refuse them
    if n <= 0:
        with pytest.raises(DataError, match=re.escape(f"n must be a positive integer; got {n}")):
            model.recommend(users, n=n)
    else:
        ids_, scores = model.recommend(users, n=n)
        assert ids_.shape == scores.shape == (len(users), min(n, data.n_items))
        for row, user in enumerate(users):
            unseen = item_set - seen_items(data, user)
            check_row(ids_[row], scores[row], unseen, min(n, len(unseen)), pad)
        # the same log in another row order gives the same recommendations
        shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        again = MODELS[which]().fit(recae.Interactions.from_pandas(shuffled)).recommend(users, n=n)
        np.testing.assert_array_equal(again[0], ids_)

    # ---- arbitrary requested ids: an UnknownIdError naming the unknown ids, or a well-formed answer
    k = max(n, 1)
    user_set = set(data.user_ids.tolist())
    unknown_users = [a for a in asked if a not in user_set]
    call = lambda: model.recommend(asked, n=k, items=candidates, exclude=excluded)  # noqa: E731
    if unknown_users:  # users are looked up first
        assert_unknown(call, "user", unknown_users)
    elif [a for a in candidates if a not in item_set]:
        assert_unknown(call, "item", [a for a in candidates if a not in item_set])
    elif [a for a in excluded if a not in item_set]:
        assert_unknown(call, "item", [a for a in excluded if a not in item_set])
    else:
        allowed = set(candidates) - set(excluded)
        got_ids, got_scores = call()
        assert got_ids.shape == got_scores.shape == (len(asked), min(k, len(allowed)))
        for row, user in enumerate(asked):
            left = allowed - seen_items(data, user)
            check_row(got_ids[row], got_scores[row], left, min(k, len(left)), pad)

    # ---- a new user's history with unknown="ignore": always an answer, unknown ids dropped
    new_ids, new_scores = model.recommend_new(history_ids, n=k, unknown="ignore")
    assert new_ids.ndim == 1 and new_ids.shape == new_scores.shape
    assert np.all(np.isfinite(new_scores)) and np.all(np.diff(new_scores) <= 1e-6)
    got = new_ids.tolist()
    assert len(set(got)) == len(got) and set(got) <= item_set
    history = {a for a in history_ids if a in item_set}
    if len({type(a) for a in history_ids}) <= 1 or pad is None:
        # one id type, or a string-id model: the known ids form the history and are excluded as seen
        assert not history & set(got)
        assert len(got) == min(k, data.n_items - len(history))
    else:
        # mixed int/str history on an integer-id model: NumPy turns the list into strings, so the known
        # ints are dropped with the unknown strings (current recae behaviour, neither frozen nor
        # asserted against here): only the length bounds hold either way
        assert min(k, data.n_items - len(history)) <= len(got) <= min(k, data.n_items)


def test_one_new_users_seen_items_stay_out_of_only_their_own_popularity_fallback():
    import scipy.sparse as sp

    # item popularity 4, 3, 2, 1, 0: no ties, so the order is the counts'; item 4 no training user had
    train = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32)
    model = recae.EASE(l2=1.0, device="cpu").fit(sp.csr_matrix(train))
    # user 0: only item 4, of which the model learned nothing (popularity, item 4 seen); user 1: item 0
    # with a stored zero, a known non-interaction (nothing to fold in, but seen), as in training data
    history = sp.csr_matrix((np.array([1.0, 0.0], np.float32), (np.array([0, 1]), np.array([4, 0]))), shape=(2, 5))
    ids, _ = model.recommend_new(history, n=5)
    assert ids[0].tolist() == [0, 1, 2, 3, -1] and ids[1].tolist() == [1, 2, 3, 4, -1]


def test_an_interactions_history_names_the_unknown_items_it_leaves_out():
    import scipy.sparse as sp

    from recae.exceptions import DataWarning

    train = recae.Interactions(sp.csr_matrix(np.eye(3, dtype=np.float32) + np.eye(3, k=1, dtype=np.float32)),
                               np.array(["a", "b", "c"]), np.array(["x", "y", "z"]))
    model = recae.EASE(l2=1.0, device="cpu").fit(train)
    history = recae.Interactions(sp.csr_matrix(np.ones((1, 2), np.float32)), np.array(["n"]), np.array(["x", "w"]))
    with pytest.warns(DataWarning, match=r"left out 1 entries of 1 unknown item id\(s\) \['w'\]"):
        ids, _ = model.recommend_new(history, n=2, unknown="ignore")
    assert ids.tolist() == [["y", "z"]]


def test_a_stored_zero_is_seen_but_never_learned_from_or_counted():
    """A stored 0 is a known non-interaction: never recommended, in training data and histories alike,
    but neither learned from (implicit's ALS read it as a negative confidence) nor counted as popularity."""
    import scipy.sparse as sp
    from recae import EASE, ImplicitALS, Popularity
    dense = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 1], [1, 0, 0, 1]], np.float32)
    X = sp.csr_matrix(dense)
    c = X.tocoo()
    Z = sp.coo_matrix((np.r_[c.data, 0.0], (np.r_[c.row, 0], np.r_[c.col, 3])), shape=X.shape).tocsr()  # a stored 0
    assert Z.nnz == X.nnz + 1
    for make in (lambda: EASE(l2=1.0, device="cpu"), lambda: Popularity(device="cpu"),
                 lambda: ImplicitALS(factors=2, iterations=3, regularization=1.0, device="cpu")):
        plain, zero = make().fit(X), make().fit(Z)
        np.testing.assert_array_equal(plain.score(X), zero.score(X))  # learned the same
        np.testing.assert_array_equal(zero.score(X[:1]), zero.score(Z[:1]))  # and folds a history in alike
        assert 3 in plain.recommend(0, n=4)[0].tolist() and 3 not in zero.recommend(0, n=4)[0].tolist()
        assert 3 not in zero.recommend_new(Z[0], n=4)[0].ravel().tolist()  # a history's stored 0 alike
        if not isinstance(zero, ImplicitALS):  # exact fold-ins: the same ranking as the training row's
            for a, b in zip(zero.recommend(0, n=4), zero.recommend_new(Z[0], n=4)):
                np.testing.assert_array_equal(a, b.ravel()[:len(a)])  # one matrix row: padded to n
    assert Popularity(device="cpu").fit(Z).item_counts().tolist() == [3, 2, 2, 2]
    blend = recae.Blend(members=[("EASE", {"l2": 1.0}), ("Popularity", {})], device="cpu").fit(Z)
    for member in blend.members_:  # each member usable on its own: the zero is seen there too
        assert 3 not in member.recommend(0, n=4)[0].tolist()


def test_a_history_of_items_no_training_user_had_is_ranked_by_popularity():
    """The model learned nothing of them (ALS gives them zero factors, EASE zero weights): before, such a
    history got an arbitrary order of tied zero scores instead of the empty history's popularity."""
    import scipy.sparse as sp
    from recae import EASE, ImplicitALS
    dense = np.zeros((6, 6), np.float32)
    dense[:, :4] = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0], [1, 1, 0, 0]])
    X = sp.csr_matrix(dense)  # items 4 and 5: no training user
    for model in (EASE(l2=1.0, device="cpu").fit(X), ImplicitALS(factors=2, iterations=2, device="cpu").fit(X)):
        untrained, empty = model.recommend_new([4, 5], n=3), model.recommend_new([], n=3)
        np.testing.assert_array_equal(untrained[0], empty[0])
        assert untrained[0].tolist() == [0, 1, 2]  # by training users: 5, 4, 2
        assert model.explain([4], [0])[0]["method"] == "popularity"


def test_ids_from_a_generator_and_a_dense_history_matrix():
    """A generator of ids was one "unknown id" (numpy kept it whole); a dense row gets a pointer to CSR."""
    import scipy.sparse as sp
    from recae import EASE
    X = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]], np.float32))
    model = EASE(l2=1.0, device="cpu").fit(X)
    ids, _ = model.recommend(0, n=2, items=(i for i in (2, 3)), exclude_seen=False)
    assert sorted(ids.tolist()) == [2, 3]
    with pytest.raises(DataError, match=r"got shape \(1, 4\) \(a dense history matrix\? pass scipy.sparse.csr_matrix"):
        model.recommend_new(np.ones((1, 4)))
