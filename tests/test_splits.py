"""Contract of the seeded splits: holdout, temporal and strong generalization."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from conftest import require_data
from recae.data import HoldoutSplit, Interactions, StrongSplit, holdout_split, strong_generalization_split, temporal_split
from recae.exceptions import DataError, DataWarning


# ---------------------------------------------------------------- helpers
def pairs(data: Interactions) -> dict:
    """{(raw user, raw item): (value, timestamp)} read straight from the CSR arrays."""
    m = data.matrix
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    ts = data.timestamps.tolist() if data.timestamps is not None else [None] * m.nnz
    out = dict(zip(zip(data.user_ids[rows].tolist(), data.item_ids[m.indices].tolist()), zip(m.data.tolist(), ts)))
    assert len(out) == m.nnz
    return out


def per_user(data: Interactions) -> dict:
    """{raw user: number of stored entries}, every user included."""
    return dict(zip(data.user_ids.tolist(), np.diff(data.matrix.indptr).tolist()))


def same(a: Interactions, b: Interactions) -> bool:
    return (a.shape == b.shape and np.array_equal(a.matrix.indptr, b.matrix.indptr)
            and np.array_equal(a.matrix.indices, b.matrix.indices) and np.array_equal(a.matrix.data, b.matrix.data)
            and a.user_ids.tolist() == b.user_ids.tolist() and a.item_ids.tolist() == b.item_ids.tolist()
            and np.array_equal(a.timestamps, b.timestamps))


def make_log(n_users=80, n_items=40, seed=0, rare=15) -> pd.DataFrame:
    """Random log: user u has 1..24 distinct items, distinct timestamps per user; ``rare``
    extra items with a single user each (so some exist only among held-out users)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        k = int(rng.integers(1, 25))
        for i in rng.choice(n_items, size=min(k, n_items), replace=False):
            rows.append((f"u{u:03d}", int(i)))
    for j in range(rare):
        rows.append((f"u{int(rng.integers(n_users)):03d}", 1000 + j))
    df = pd.DataFrame(rows, columns=["user", "item"]).drop_duplicates(["user", "item"])
    df["ts"] = 1.6e9 + rng.permutation(len(df)) * 7.0
    df["rating"] = rng.integers(1, 6, size=len(df)).astype(float)
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return make_log()


@pytest.fixture(scope="module")
def data(log) -> Interactions:
    return Interactions.from_pandas(log, rating="rating", timestamp="ts")


# ---------------------------------------------------------------- holdout
def floor_frac(f: float, n: int) -> int:
    return int(Fraction(str(f)) * n)


@pytest.mark.parametrize("test_size, valid_size, min_items", [(0.2, 0.0, 5), (0.2, 0.1, 5), (0.5, 0.3, 4), (0.3, 0.0, 2)])
def test_holdout_partition_and_counts(data, test_size, valid_size, min_items):
    s = holdout_split(data, test_size=test_size, valid_size=valid_size, min_items=min_items, random_state=3)
    assert isinstance(s, HoldoutSplit) and s.protocol == "holdout"
    parts = [s.train, s.test] + ([s.valid] if valid_size else [])
    if not valid_size:
        assert s.valid is None
    for p in parts:
        assert p.shape == data.shape
        assert p.user_ids.tolist() == data.user_ids.tolist() and p.item_ids.tolist() == data.item_ids.tolist()
    maps = [pairs(p) for p in parts]
    assert sum(len(m) for m in maps) == data.nnz  # every entry in exactly one part ...
    union = {}
    for m in maps:
        union.update(m)
    assert union == pairs(data)  # ... with its value and timestamp
    n = per_user(data)
    want_test = {u: (floor_frac(test_size, c) if c >= min_items else 0) for u, c in n.items()}
    want_valid = {u: (floor_frac(valid_size, c) if c >= min_items else 0) for u, c in n.items()}
    assert per_user(s.test) == want_test
    assert any(v > 0 for v in want_test.values())
    # users below min_items that the fraction alone would have split
    if min_items == 4:
        assert any(c < min_items and floor_frac(test_size, c) > 0 for c in n.values())
    if valid_size:
        assert per_user(s.valid) == want_valid
        assert per_user(s.train) == {u: n[u] - want_test[u] - want_valid[u] for u in n}


def test_holdout_seeded(data):
    a = holdout_split(data, random_state=7)
    b = holdout_split(data, random_state=7)
    c = holdout_split(data, random_state=8)
    assert same(a.train, b.train) and same(a.test, b.test)
    assert set(pairs(a.test)) != set(pairs(c.test))
    assert per_user(a.test) == per_user(c.test)  # same sizes, different entries


def test_holdout_bad_fractions(data):
    for kw in ({"test_size": 1.0}, {"test_size": -0.1}, {"test_size": 0.6, "valid_size": 0.4}):
        with pytest.raises(DataError):
            holdout_split(data, **kw)


# ---------------------------------------------------------------- temporal
@pytest.mark.parametrize("k, valid_k", [(1, 0), (2, 0), (2, 3)])
def test_temporal_split_matches_pandas(log, data, k, valid_k):
    s = temporal_split(data, k=k, valid_k=valid_k)
    counts = log.groupby("user")["item"].transform("size")
    newest_first = log[counts > k + valid_k].sort_values("ts", ascending=False)
    rank = newest_first.groupby("user").cumcount()
    ref_test = newest_first[rank < k]
    ref_valid = newest_first[(rank >= k) & (rank < k + valid_k)]
    as_map = lambda df: {(u, i): (r, t) for u, i, r, t in zip(df.user, df.item, df.rating, df.ts)}
    assert pairs(s.test) == as_map(ref_test)
    if valid_k:
        assert pairs(s.valid) == as_map(ref_valid)
    else:
        assert s.valid is None
    rest = log.drop(index=ref_test.index.union(ref_valid.index))
    assert pairs(s.train) == as_map(rest)
    # every remaining train entry of a split user is older than its test entries
    oldest_test = ref_test.groupby("user")["ts"].min()
    newest_train = rest.groupby("user")["ts"].max()
    assert (newest_train.reindex(oldest_test.index) < oldest_test).all()


def test_temporal_ties_broken_by_item_index_at_epoch_scale():
    # equal timestamps of epoch magnitude: the higher item column counts as newer
    df = pd.DataFrame({"user": [1, 1, 1, 1], "item": ["b", "a", "c", "d"],
                       "t": [1.6e9, 1.6e9, 1.6e9, 1.0e9]})
    s = temporal_split(Interactions.from_pandas(df, timestamp="t"), k=1)
    assert set(pairs(s.test)) == {(1, "c")}
    s2 = temporal_split(Interactions.from_pandas(df.iloc[::-1], timestamp="t"), k=2)
    assert set(pairs(s2.test)) == {(1, "c"), (1, "b")}


def test_temporal_needs_timestamps(log):
    with pytest.raises(DataError, match="timestamp"):
        temporal_split(Interactions.from_pandas(log, rating="rating"))
    with pytest.raises(DataError):
        temporal_split(Interactions.from_pandas(log, timestamp="ts"), k=0)


# ---------------------------------------------------------------- strong generalization
def check_strong(log: pd.DataFrame, data: Interactions, s: StrongSplit, n_held: int) -> None:
    assert isinstance(s, StrongSplit) and s.protocol == "strong"
    train_u = s.train.user_ids.tolist()
    valid_u = s.valid_fold_in.user_ids.tolist()
    test_u = s.test_fold_in.user_ids.tolist()
    assert s.valid_target.user_ids.tolist() == valid_u and s.test_target.user_ids.tolist() == test_u
    assert len(valid_u) == len(test_u) == n_held and len(train_u) == data.n_users - 2 * n_held
    assert set(train_u).isdisjoint(valid_u) and set(train_u).isdisjoint(test_u) and set(valid_u).isdisjoint(test_u)
    assert sorted(train_u + valid_u + test_u) == data.user_ids.tolist()
    for part in (train_u, valid_u, test_u):  # every part keeps the data's (sorted) user order
        assert part == sorted(part)
    # items: those with at least one training entry, shared by every part
    seen = sorted(log.loc[log.user.isin(train_u), "item"].unique().tolist())
    assert len(seen) < data.n_items  # the restriction bites on this log
    for p in (s.train, s.valid_fold_in, s.valid_target, s.test_fold_in, s.test_target):
        assert p.item_ids.tolist() == seen
        np.testing.assert_array_equal(p.item_ids, s.train.item_ids)
    orig = pairs(data)
    # train: the full histories of the training users
    assert pairs(s.train) == {k: v for k, v in orig.items() if k[0] in set(train_u)}
    assert per_user(s.train) == {u: int((log.user == u).sum()) for u in train_u}
    seen_set = set(seen)
    for fold, target in ((s.valid_fold_in, s.valid_target), (s.test_fold_in, s.test_target)):
        f, t = pairs(fold), pairs(target)
        assert set(f).isdisjoint(t)
        users = set(fold.user_ids.tolist())
        want = {k: v for k, v in orig.items() if k[0] in users and k[1] in seen_set}
        assert {**f, **t} == want  # values and timestamps carried along
        n = per_user(fold)
        nt = per_user(target)
        for u in users:
            total = n[u] + nt[u]
            assert nt[u] == (total // 5 if total >= 5 else 0), (u, total, nt[u])


def test_heldout_fraction_is_not_cut_short_by_float_error():
    """0.29 × 100 is 28.999999999999996 in floats: the part still has 29 users, as 29 % of 100."""
    from recae.datasets import synthetic
    data = synthetic(100, 50, random_state=0)
    assert strong_generalization_split(data, n_heldout=0.29, random_state=0).test_fold_in.n_users == 29
    assert strong_generalization_split(data, n_heldout=0.3, random_state=0).test_fold_in.n_users == 30


@pytest.mark.parametrize("n_heldout, n_held", [(0.1, 8), (12, 12)])
def test_strong_split_contract(log, data, n_heldout, n_held):
    s = strong_generalization_split(data, n_heldout=n_heldout, random_state=98765)
    check_strong(log, data, s, n_held)
    # held-out users too small to be scored exist beside scored ones
    totals = np.diff(s.valid_fold_in.matrix.indptr) + np.diff(s.valid_target.matrix.indptr)
    totals = np.concatenate([totals, np.diff(s.test_fold_in.matrix.indptr) + np.diff(s.test_target.matrix.indptr)])
    assert (totals < 5).any() and (totals >= 5).any()


def test_strong_split_min_items_and_fraction(log, data):
    s = strong_generalization_split(data, n_heldout=15, target_fraction=0.5, min_items=6, random_state=5)
    totals, targets = [], []
    for fold, target in ((s.valid_fold_in, s.valid_target), (s.test_fold_in, s.test_target)):
        n_f, n_t = np.diff(fold.matrix.indptr), np.diff(target.matrix.indptr)
        totals.append(n_f + n_t)
        targets.append(n_t)
    totals, targets = np.concatenate(totals), np.concatenate(targets)
    np.testing.assert_array_equal(targets, np.where(totals >= 6, totals // 2, 0))
    assert ((totals >= 2) & (totals < 6)).any()  # half of these would be targets without min_items


def test_strong_split_seeded(log, data):
    a = strong_generalization_split(data, n_heldout=10, random_state=1)
    b = strong_generalization_split(data, n_heldout=10, random_state=1)
    c = strong_generalization_split(data, n_heldout=10, random_state=2)
    for name in ("train", "valid_fold_in", "valid_target", "test_fold_in", "test_target"):
        assert same(getattr(a, name), getattr(b, name)), name
    assert a.test_fold_in.user_ids.tolist() != c.test_fold_in.user_ids.tolist()
    check_strong(log, data, c, 10)


def test_strong_split_bad_sizes(data):
    for bad in (0, 0.0, 40, 0.5, -3, "10", True):
        with pytest.raises(DataError):
            strong_generalization_split(data, n_heldout=bad)


# ---------------------------------------------------------------- real data
def test_ml1m_protocol_counts():
    path = require_data("ml-1m", "ratings.dat")
    df = pd.read_csv(path, sep=":", usecols=[0, 2, 4, 6], header=None, names=["user", "item", "rating", "ts"])
    assert len(df) == 1_000_209
    data = Interactions.from_pandas(df, rating="rating", timestamp="ts")
    assert data.shape == (6040, 3706) and data.nnz == 1_000_209
    pos = data.binarize(3.5).filter(min_user=5)

    liked = df[df.rating >= 4]
    per = liked.groupby("user").size()
    keep = liked[liked.user.isin(per[per >= 5].index)]
    assert int((per >= 5).sum()) == 6034 == pos.n_users
    assert pos.nnz == len(keep) and pos.n_items == keep.item.nunique()
    assert pos.user_ids.tolist() == sorted(keep.user.unique().tolist())
    assert set(np.unique(pos.matrix.data).tolist()) == {1.0}

    s = strong_generalization_split(pos, n_heldout=0.1, random_state=98765)
    assert (s.train.n_users, s.valid_fold_in.n_users, s.test_fold_in.n_users) == (4828, 603, 603)
    seen = np.unique(keep.loc[keep.user.isin(s.train.user_ids), "item"])
    np.testing.assert_array_equal(s.train.item_ids, seen)
    for fold, target in ((s.valid_fold_in, s.valid_target), (s.test_fold_in, s.test_target)):
        np.testing.assert_array_equal(fold.item_ids, seen)
        n_f, n_t = np.diff(fold.matrix.indptr), np.diff(target.matrix.indptr)
        total = n_f + n_t
        np.testing.assert_array_equal(n_t, np.where(total >= 5, total // 5, 0))
        # fold-in + target is the user's positives on training items
        ref = keep[keep.user.isin(fold.user_ids) & keep.item.isin(seen)].groupby("user").size()
        np.testing.assert_array_equal(total, ref.reindex(fold.user_ids, fill_value=0).to_numpy())
        assert fold.matrix.multiply(target.matrix).nnz == 0


def test_an_empty_held_out_part_is_named():
    frame = pd.DataFrame({"user": [1, 1, 1, 2, 2, 2, 3, 3, 3], "item": [1, 2, 3] * 3, "t": range(9)})
    data = Interactions.from_pandas(frame, timestamp="t")
    with pytest.warns(DataWarning, match=r"holdout_split\(test_size=0.01, valid_size=0\): the test part is empty"):
        holdout_split(data, test_size=0.01)
    with pytest.warns(DataWarning, match=r"temporal_split\(k=5, valid_k=0\): the test part is empty .*more than "
                                         r"k \+ valid_k = 5 entries"):
        temporal_split(data, k=5)
    with pytest.warns(DataWarning) as caught:
        strong_generalization_split(data, n_heldout=1, min_items=10, random_state=0)
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "strong_generalization_split: the validation target part is empty",
        "strong_generalization_split: the test target part is empty"]
