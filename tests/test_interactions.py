"""Contract of recae.data.Interactions: construction, validation, I/O and derived logs.

Small hand-made logs with exact expected values; every test can fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recae.data import Interactions
from recae.data.interactions import check_interactions
from recae.exceptions import DataError, DataWarning, ShapeError, UnknownIdError


# ---------------------------------------------------------------- helpers
def entries(data: Interactions) -> dict:
    """{(raw user, raw item): (value, timestamp or None)} read straight from the CSR arrays."""
    m = data.matrix
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    users = data.user_ids[rows].tolist()
    items = data.item_ids[m.indices].tolist()
    vals = m.data.tolist()
    ts = data.timestamps.tolist() if data.timestamps is not None else [None] * len(vals)
    out = dict(zip(zip(users, items), zip(vals, ts)))
    assert len(out) == m.nnz, "duplicate (user, item) entries in the matrix"
    return out


def ts_of(data: Interactions) -> dict:
    return {k: t for k, (_, t) in entries(data).items()}


def assert_same(a: Interactions, b: Interactions) -> None:
    for x in (a, b):
        assert sp.issparse(x.matrix) and x.matrix.format == "csr"
        assert x.matrix.dtype == np.float32
    assert a.matrix.shape == b.matrix.shape
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)
    np.testing.assert_array_equal(a.matrix.indices, b.matrix.indices)
    np.testing.assert_array_equal(a.matrix.data, b.matrix.data)
    assert a.user_ids.tolist() == b.user_ids.tolist()
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.user_ids.dtype.kind == b.user_ids.dtype.kind
    assert a.item_ids.dtype.kind == b.item_ids.dtype.kind
    assert (a.timestamps is None) == (b.timestamps is None)
    if a.timestamps is not None:
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert a.has_ratings == b.has_ratings


def shuffled(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture
def log() -> pd.DataFrame:
    """Explicit ratings with timestamps; int users, string items; no duplicates."""
    return pd.DataFrame({
        "user": [30, 10, 20, 10, 30, 20],
        "item": ["y", "x", "y", "z", "x", "z"],
        "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 3.5],
        "ts": [600, 100, 300, 200, 500, 400],
    })


@pytest.fixture
def data(log) -> Interactions:
    return Interactions.from_pandas(log, rating="rating", timestamp="ts")


# ---------------------------------------------------------------- construction
def test_int_ids_sorted_and_csr_float32():
    df = pd.DataFrame({"user": [30, 10, 20, 10], "item": [7, 5, 7, 9], "r": [1, 2, 3, 4]})
    d = Interactions.from_pandas(df, rating="r")
    assert d.user_ids.tolist() == [10, 20, 30]
    assert d.item_ids.tolist() == [5, 7, 9]
    assert d.user_ids.dtype == np.int64 and d.item_ids.dtype == np.int64
    assert isinstance(d.matrix, sp.csr_matrix) and d.matrix.dtype == np.float32
    assert d.matrix.shape == (3, 3) == (d.n_users, d.n_items) == d.shape
    assert d.nnz == 4
    np.testing.assert_array_equal(d.matrix.toarray(), [[2, 0, 4], [0, 3, 0], [0, 1, 0]])
    assert d.has_ratings and d.timestamps is None
    assert d.matrix.has_canonical_format


def test_string_ids_sorted():
    df = pd.DataFrame({"user": ["bob", "alice", "carol", "alice"], "item": ["x", "z", "y", "x"]})
    d = Interactions.from_pandas(df)
    assert d.user_ids.tolist() == ["alice", "bob", "carol"]
    assert d.item_ids.tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(d.matrix.toarray(), [[1, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert not d.has_ratings


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_invariant_to_row_order(log, data, seed):
    # duplicates too: the latest by timestamp must win whatever the row order
    dup = pd.concat([log, pd.DataFrame({"user": [10, 10], "item": ["x", "x"], "rating": [5.0, 1.0], "ts": [900, 50]})])
    ref = Interactions.from_pandas(dup, rating="rating", timestamp="ts")
    got = Interactions.from_pandas(shuffled(dup, seed), rating="rating", timestamp="ts")
    assert_same(ref, got)
    assert entries(ref)[(10, "x")] == (5.0, 900.0)
    strs = log.assign(user=log["user"].map(lambda u: f"u{u}"))
    assert_same(Interactions.from_pandas(strs), Interactions.from_pandas(shuffled(strs, seed)))


def test_integral_float_ids_accepted():
    df = pd.DataFrame({"user": [3.0, 1.0, 2.0], "item": [10.0, 10.0, 20.0]})
    d = Interactions.from_pandas(df)
    assert d.user_ids.dtype == np.int64 and d.user_ids.tolist() == [1, 2, 3]
    assert d.item_ids.dtype == np.int64 and d.item_ids.tolist() == [10, 20]


@pytest.mark.parametrize("bad", [1.5, np.inf])
def test_non_integral_float_ids_refused(bad):
    df = pd.DataFrame({"user": [1.0, bad], "item": [1, 2]})
    with pytest.raises(DataError) as exc:
        Interactions.from_pandas(df)
    assert "'user'" in str(exc.value) and str(bad) in str(exc.value)


def test_categorical_ids():
    users = pd.Categorical(["b", "a", "b"], categories=["z", "b", "a"])  # unused category, unsorted
    items = pd.Categorical([20, 10, 10])
    d = Interactions.from_pandas(pd.DataFrame({"user": users, "item": items}))
    assert d.user_ids.tolist() == ["a", "b"]
    assert d.item_ids.tolist() == [10, 20]
    np.testing.assert_array_equal(d.matrix.toarray(), [[1, 0], [1, 1]])


def test_categorical_ids_with_missing_value_raise_data_error():
    df = pd.DataFrame({"user": pd.Categorical([1, None, 2]), "item": [1, 2, 3]})
    with pytest.raises(DataError, match="'user'.*missing.*row 1"):
        Interactions.from_pandas(df)


def test_to_pandas_and_round_trip(data):
    out = data.to_pandas()
    assert list(out.columns) == ["user", "item", "rating", "timestamp"]
    assert out["user"].tolist() == [10, 10, 20, 20, 30, 30]
    assert out["item"].tolist() == ["x", "z", "y", "z", "x", "y"]
    assert out["rating"].tolist() == [2.0, 4.0, 3.0, 3.5, 5.0, 1.0]
    assert out["timestamp"].tolist() == [100, 200, 300, 400, 500, 600]
    back = Interactions.from_pandas(out, rating="rating", timestamp="timestamp")
    assert_same(back, data)
    implicit = Interactions.from_pandas(out[["user", "item"]])
    assert_same(Interactions.from_pandas(implicit.to_pandas()), implicit)


def test_timestamps_aligned_after_construction(data):
    assert ts_of(data) == {
        (10, "x"): 100, (10, "z"): 200, (20, "y"): 300, (20, "z"): 400, (30, "x"): 500, (30, "y"): 600,
    }
    assert entries(data)[(20, "z")] == (3.5, 400.0)


# ---------------------------------------------------------------- duplicates
def test_duplicates_explicit_default_last_by_timestamp():
    df = pd.DataFrame({"user": [1, 1, 1, 2], "item": [9, 9, 9, 9], "r": [5.0, 2.0, 3.0, 1.0],
                       "t": [300, 100, 200, 50]})
    d = Interactions.from_pandas(df, rating="r", timestamp="t")
    assert entries(d) == {(1, 9): (5.0, 300.0), (2, 9): (1.0, 50.0)}  # latest time, not last row


def test_duplicates_explicit_last_row_without_timestamps_or_on_ties():
    df = pd.DataFrame({"user": [1, 1, 1], "item": [9, 9, 9], "r": [5.0, 2.0, 4.0]})
    assert entries(Interactions.from_pandas(df, rating="r")) == {(1, 9): (4.0, None)}
    tie = df.assign(t=[100, 100, 50])
    assert entries(Interactions.from_pandas(tie, rating="r", timestamp="t")) == {(1, 9): (2.0, 100.0)}


def test_duplicates_implicit_default_presence_keeps_latest_time(caplog):
    # a click log: repeated clicks are one positive of 1.0, not a count (counts break EASE's defaults)
    df = pd.DataFrame({"user": ["a", "a", "a", "b"], "item": ["x", "x", "x", "x"], "t": [5, 9, 7, 1]})
    with caplog.at_level("INFO", logger="recae.data"):
        d = Interactions.from_pandas(df, timestamp="t")
    assert entries(d) == {("a", "x"): (1.0, 9.0), ("b", "x"): (1.0, 1.0)}
    assert not d.has_ratings and d.merged_rows == 2
    assert "merged 2 repeated (user, item) rows of 4 into 2 entries" in caplog.text and "up to 3 rows" in caplog.text
    counts = Interactions.from_pandas(df, timestamp="t", duplicates="sum")  # counts on request
    assert entries(counts) == {("a", "x"): (3.0, 9.0), ("b", "x"): (1.0, 1.0)}
    d2 = Interactions.from_pandas(df.assign(r=[1.0, 2.0, 4.0, 1.0]), rating="r", duplicates="sum")
    assert entries(d2)[("a", "x")] == (7.0, None)
    assert Interactions.from_pandas(df.iloc[[0, 3]]).merged_rows == 0


def test_duplicates_first():
    df = pd.DataFrame({"user": [1, 1, 1], "item": [9, 9, 9], "r": [5.0, 2.0, 4.0], "t": [300, 100, 200]})
    assert entries(Interactions.from_pandas(df, rating="r", timestamp="t", duplicates="first")) == {(1, 9): (2.0, 100.0)}
    assert entries(Interactions.from_pandas(df, rating="r", duplicates="first")) == {(1, 9): (5.0, None)}


def test_duplicates_raise_names_the_pair():
    df = pd.DataFrame({"user": ["alice", "bob", "alice"], "item": ["x", "x", "x"]})
    with pytest.raises(DataError) as exc:
        Interactions.from_pandas(df, duplicates="raise")
    msg = str(exc.value)
    assert "'alice'" in msg and "'x'" in msg and "np." not in msg
    # no duplicates: "raise" builds normally
    assert Interactions.from_pandas(df.iloc[:2], duplicates="raise").nnz == 2


def test_duplicates_unknown_rule():
    with pytest.raises(DataError, match="'max'"):
        Interactions.from_pandas(pd.DataFrame({"user": [1], "item": [1]}), duplicates="max")


# ---------------------------------------------------------------- timestamps
def test_datetime_timestamps_become_epoch_seconds():
    t = pd.to_datetime(["1970-01-01 00:00:10", "2000-01-01 00:00:00"])
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": t})
    assert Interactions.from_pandas(df, timestamp="t").timestamps.tolist() == [10.0, 946684800.0]
    secs = df.assign(t=t.astype("datetime64[s]"))
    assert Interactions.from_pandas(secs, timestamp="t").timestamps.tolist() == [10.0, 946684800.0]
    aware = df.assign(t=t.tz_localize("UTC").tz_convert("Europe/Berlin"))
    assert Interactions.from_pandas(aware, timestamp="t").timestamps.tolist() == [10.0, 946684800.0]


def test_missing_datetime_refused():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": pd.to_datetime(["2000-01-01", None])})
    with pytest.raises(DataError, match="'t'"):
        Interactions.from_pandas(df, timestamp="t")


# ---------------------------------------------------------------- bad input
def test_missing_column_lists_available():
    df = pd.DataFrame({"user": [1], "item": [2], "stars": [3]})
    with pytest.raises(DataError) as exc:
        Interactions.from_pandas(df, rating="score")
    msg = str(exc.value)
    assert "'score'" in msg and "'user'" in msg and "'item'" in msg and "'stars'" in msg
    with pytest.raises(DataError, match="'movie'"):
        Interactions.from_pandas(df, item="movie")


@pytest.mark.parametrize("bad, word", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_rating(bad, word):
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [4.0, bad]})
    with pytest.raises(DataError) as exc:
        Interactions.from_pandas(df, rating="rating")
    assert "'rating'" in str(exc.value) and f"value {word}" in str(exc.value) and "row 1" in str(exc.value)


def test_non_numeric_rating():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": ["good", "bad"]})
    with pytest.raises(DataError) as exc:
        Interactions.from_pandas(df, rating="rating")
    assert "'rating'" in str(exc.value) and "good" in str(exc.value)
    mixed = df.assign(rating=pd.Series([4.0, "5"], dtype=object))
    with pytest.raises(DataError, match="'5'"):
        Interactions.from_pandas(mixed, rating="rating")


def test_object_column_of_numbers_is_numeric():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": pd.Series([4, 2.5], dtype=object)})
    assert Interactions.from_pandas(df, rating="rating").matrix.data.tolist() == [4.0, 2.5]


def test_missing_id():
    df = pd.DataFrame({"user": [1, 2], "item": ["a", None]})
    with pytest.raises(DataError, match=r"'item'.*missing.*row 1"):
        Interactions.from_pandas(df)


def test_mixed_int_and_string_ids():
    df = pd.DataFrame({"user": [1, "2"], "item": [1, 1]})
    with pytest.raises(DataError) as exc:
        Interactions.from_pandas(df)
    assert "'user'" in str(exc.value) and "mixed" in str(exc.value)


def test_ids_beyond_int64_refused():
    df = pd.DataFrame({"user": np.array([2**63 + 5, 1], dtype=np.uint64), "item": [1, 2]})
    with pytest.raises(DataError, match="'user'"):
        Interactions.from_pandas(df)


@pytest.mark.parametrize("df", [pd.DataFrame(), pd.DataFrame({"user": [], "item": []})])
def test_empty_log(df):
    with pytest.raises(DataError, match="empty"):
        Interactions.from_pandas(df)


@pytest.mark.parametrize("obj", [{"user": [1], "item": [1]}, [[1, 1]], np.ones((2, 2))])
def test_non_dataframe(obj):
    with pytest.raises(DataError, match=type(obj).__name__):
        Interactions.from_pandas(obj)


def test_duplicate_column_names():
    df = pd.DataFrame([[1, 2, 3]], columns=["user", "user", "item"])
    with pytest.raises(DataError, match="'user'"):
        Interactions.from_pandas(df)


def test_constructor_shape_errors():
    m = sp.csr_matrix(np.ones((3, 2)))
    with pytest.raises(ShapeError) as exc:
        Interactions(m, user_ids=[1, 2])
    msg = str(exc.value)
    assert "(2,)" in msg and "(3,)" in msg and "(3, 2)" in msg
    with pytest.raises(ShapeError, match=r"\(3,\).*\(2,\)"):
        Interactions(m, item_ids=[1, 2, 3])
    with pytest.raises(ShapeError, match=r"\(5,\).*\(6,\)"):
        Interactions(m, timestamps=np.zeros(5))
    with pytest.raises(DataError, match="NaN"):
        Interactions(m, timestamps=np.array([0, 1, 2, np.nan, 4, 5]))
    with pytest.raises(DataError, match="ndarray"):
        Interactions(np.ones((2, 2)))
    with pytest.raises(DataError, match="NaN"):
        Interactions(sp.csr_matrix(np.array([[np.nan, 1.0]])))


# ---------------------------------------------------------------- files
def test_malformed_csv_names_the_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,rating\n1,2,3\n1,3,4,5\n2,2,1\n")
    with pytest.raises(DataError) as exc:
        Interactions.from_csv(path, rating="rating")
    assert "line 3" in str(exc.value) and "log.csv" in str(exc.value)
    with pytest.raises(DataError, match="line 3"):
        Interactions.from_csv(path, rating="rating", engine="pyarrow")


def test_latin1_file_read_as_utf8_suggests_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user,item\n1,café\n2,naïve\n".encode("latin-1"))
    with pytest.raises(DataError) as exc:
        Interactions.from_csv(path)
    assert "utf-8" in str(exc.value) and "encoding='latin-1'" in str(exc.value)
    assert Interactions.from_csv(path, encoding="latin-1").item_ids.tolist() == ["café", "naïve"]


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="nope.csv"):
        Interactions.from_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="nope.parquet"):
        Interactions.from_parquet(tmp_path / "nope.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv"):
        Interactions.from_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("user,item\n")
    with pytest.raises(DataError, match="empty"):
        Interactions.from_csv(tmp_path / "header.csv")
    with pytest.raises(DataError, match="directory"):
        Interactions.from_csv(tmp_path)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="junk.parquet"):
        Interactions.from_parquet(tmp_path / "junk.parquet")


def test_csv_and_parquet_round_trip(tmp_path, log, data):
    log.to_csv(tmp_path / "log.csv", index=False)
    assert_same(Interactions.from_csv(tmp_path / "log.csv", rating="rating", timestamp="ts"), data)
    tsv = log.rename(columns={"user": "u", "item": "i"})
    tsv.to_csv(tmp_path / "log.tsv", index=False, sep="\t")
    assert_same(Interactions.from_csv(str(tmp_path / "log.tsv"), user="u", item="i", rating="rating",
                                      timestamp="ts", sep="\t"), data)
    data.to_pandas().to_parquet(tmp_path / "log.parquet")
    assert_same(Interactions.from_parquet(tmp_path / "log.parquet", rating="rating", timestamp="timestamp"), data)
    with pytest.raises(DataError) as exc:
        Interactions.from_parquet(tmp_path / "log.parquet", rating="score")
    assert "'score'" in str(exc.value) and "'timestamp'" in str(exc.value)


# ---------------------------------------------------------------- derived logs
def test_binarize(data):
    b = data.binarize(3.5)
    assert b.user_ids.tolist() == data.user_ids.tolist() and b.item_ids.tolist() == data.item_ids.tolist()
    assert b.shape == data.shape and not b.has_ratings
    # ratings 2, 4, 3, 3.5, 5, 1: only 4 and 5 are > 3.5; 3.5 itself is dropped
    assert entries(b) == {(10, "z"): (1.0, 200.0), (30, "x"): (1.0, 500.0)}
    assert b.matrix.dtype == np.float32
    assert entries(data)[(10, "z")] == (4.0, 200.0)  # the source is untouched
    assert data.binarize(0.0).nnz == 6


def test_filter_iterated_k_core():
    # A, B: {1, 2}; C: {2, 3}; D: {4}; E: {3, 5}. With min 2 one pass drops D, 4, 5; then E,
    # then item 3, then C: only A, B x 1, 2 survive (a single pass would keep C and E).
    pairs = [("A", 1), ("A", 2), ("B", 1), ("B", 2), ("C", 2), ("C", 3), ("D", 4), ("E", 3), ("E", 5)]
    df = pd.DataFrame(pairs, columns=["user", "item"]).assign(t=np.arange(len(pairs)) * 10)
    d = Interactions.from_pandas(df, timestamp="t")
    f = d.filter(min_user=2, min_item=2)
    assert f.user_ids.tolist() == ["A", "B"] and f.item_ids.tolist() == [1, 2]
    assert ts_of(f) == {("A", 1): 0, ("A", 2): 10, ("B", 1): 20, ("B", 2): 30}
    # min_user alone: only D goes, items left without users go too
    g = d.filter(min_user=2)
    assert g.user_ids.tolist() == ["A", "B", "C", "E"] and g.item_ids.tolist() == [1, 2, 3, 5]
    # min_item alone: items 4 and 5 go, then D (now empty)
    h = d.filter(min_item=2)
    assert h.user_ids.tolist() == ["A", "B", "C", "E"] and h.item_ids.tolist() == [1, 2, 3]


def test_filter_long_chain_converges():
    # a path u_k -> {k, k+1} peels two ends per pass (~150 passes), beside a 2x2 core that stays
    n = 300
    chain = pd.DataFrame({"user": np.repeat(np.arange(n), 2), "item": (np.arange(2 * n) + 1) // 2 + 1000})
    core = pd.DataFrame({"user": [-1, -1, -2, -2], "item": [1, 2, 1, 2]})
    d = Interactions.from_pandas(pd.concat([chain, core]))
    f = d.filter(min_user=2, min_item=2)
    assert f.user_ids.tolist() == [-2, -1] and f.item_ids.tolist() == [1, 2] and f.nnz == 4
    with pytest.raises(DataError, match="no interactions left"):
        Interactions.from_pandas(chain).filter(min_user=2, min_item=2)


def test_filter_compacts_and_empty_result_raises(data):
    b = data.binarize(3.5).filter()
    assert b.user_ids.tolist() == [10, 30] and b.item_ids.tolist() == ["x", "z"]
    assert ts_of(b) == {(10, "z"): 200, (30, "x"): 500}
    with pytest.raises(DataError, match="no interactions left"):
        data.filter(min_user=3)
    with pytest.raises(DataError, match="no interactions left"):
        data.binarize(10).filter()


def test_binarize_warns_when_it_keeps_almost_nothing(data):
    presence = Interactions.from_pandas(pd.DataFrame({"user": [1, 1, 2, 3], "item": [5, 6, 5, 7]}))
    with pytest.warns(DataWarning, match=r"binarize\(3\.5\) kept 0 of 4 entries \(0\.0%\); this log has no ratings"
                                        r".*binarize is for ratings: use the log as it is"):
        assert presence.binarize(3.5).nnz == 0
    clicks = Interactions.from_pandas(pd.DataFrame({"user": [1] * 9 + [2, 3], "item": [5] * 9 + [5, 7]}),
                                      duplicates="sum")
    with pytest.warns(DataWarning, match=r"kept 1 of 3 .*event counts \(1 to 9 per \(user, item\) pair\), not ratings"):
        clicks.binarize(3.5)
    with pytest.warns(DataWarning, match=r"binarize\(4\.5\) kept 1 of 6 .*range from 1 to 5 \(median 3\.25\)"):
        data.binarize(4.5)  # ratings: warned below a quarter kept


def test_binarize_keeping_a_third_of_ratings_or_most_entries_is_quiet(data, recwarn):
    data.binarize(3.0)  # 3 of 6 ratings: the usual "ratings >= 4" keeps about half
    data.binarize(3.5)  # 2 of 6: a third, still what binarizing ratings looks like
    Interactions.from_pandas(pd.DataFrame({"user": [1, 2], "item": [5, 5]})).binarize(0.5)
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


def test_filter_records_what_it_dropped(caplog):
    pairs = [("A", 1), ("A", 2), ("B", 1), ("B", 2), ("C", 2), ("D", 4)]
    d = Interactions.from_pandas(pd.DataFrame(pairs, columns=["user", "item"]))
    assert d.drops == () and d.why_dropped("D") is None
    with caplog.at_level("INFO", logger="recae.data"):
        f = d.filter(min_user=2)
    assert "filter(min_user=2, min_item=1) dropped 2 of 4 users, 1 of 3 items and 2 of 6 entries" in caplog.text
    (record,) = f.drops
    assert record.users.tolist() == ["C", "D"] and record.items.tolist() == [4]
    assert record.before == (4, 3, 6) and record.after == (2, 2, 4)
    assert f.why_dropped("D") == "removed by filter(min_user=2, min_item=1)"
    assert f.why_dropped("A") is None and f.why_dropped("Z") is None and f.why_dropped(["unhashable"]) is None
    # derived logs inherit the record; a second filter adds its own; a filter that drops nothing adds none
    g = f.take_users([1, 0]).filter(min_item=2)
    assert g.drops == f.drops and f.filter().drops == f.drops
    h = f.filter_entries(np.array([True, True, True, False])).filter(min_user=2)
    assert len(h.drops) == 2 and h.why_dropped("B") == "removed by filter(min_user=2, min_item=1)"
    assert h.why_dropped("C") == "removed by filter(min_user=2, min_item=1)"  # the first step's


def test_filter_warns_when_it_keeps_less_than_half():
    df = pd.DataFrame({"user": [1, 1, 1, 2, 3, 4, 5], "item": [1, 2, 3, 1, 2, 3, 4]})
    with pytest.warns(DataWarning, match=r"filter\(min_user=3, min_item=1\) kept 3 of 7 entries \(42\.9%\); "
                                        r"users have a median of 1 entries; lower min_user \(now 3\)"):
        Interactions.from_pandas(df).filter(min_user=3)
    with pytest.raises(DataError, match=r"no interactions left after filter\(min_user=4, min_item=1\).*lower min_user"):
        Interactions.from_pandas(df).filter(min_user=4)


@pytest.mark.parametrize("text, seconds", [
    (["2024-03-01T12:00:00Z", "2024-03-01T13:00:00Z"], [1709294400.0, 1709298000.0]),
    (["2024-03-01 12:00:00", "2024-03-01"], [1709294400.0, 1709251200.0]),        # no zone: UTC
    (["2024-03-01T14:00:00+02:00", "2024-03-01T12:00:00Z"], [1709294400.0] * 2),  # zones converted
    (["01 Mar 2024 12:00", "2024-03-01T12:00:00"], [1709294400.0] * 2),            # mixed formats
])
def test_text_timestamps_are_parsed_as_dates(text, seconds):
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": text})
    assert Interactions.from_pandas(df, timestamp="t").timestamps.tolist() == seconds


def test_text_timestamps_that_are_not_dates():
    df = pd.DataFrame({"user": [1, 2, 3], "item": [1, 1, 1], "t": ["2024-03-01", "soon", "2024-03-02"]})
    with pytest.raises(DataError, match=r"column 't' holds text dates, but 1 value\(s\) are not dates, e\.g\. "
                                        r"'soon' \(first at row 1\)") as exc:
        Interactions.from_pandas(df, timestamp="t")
    assert exc.value.row == 1
    with pytest.raises(DataError, match=r"column 't' must be numeric or dates"):
        Interactions.from_pandas(df.assign(t=["a", "b", "c"]), timestamp="t")
    with pytest.raises(DataError, match=r"must be numeric or dates.*; got dtype \w+ with numbers stored as text, such as "
                                        r"\['1', '2', '3'\] \(first at row 0\); convert them with "
                                        r"df\['t'\] = pd.to_numeric\(df\['t'\]\)"):  # numbers as text are not dates
        Interactions.from_pandas(df.assign(t=["1", "2", "3"]), timestamp="t")
    with pytest.raises(DataError, match=r"column 'r' must be numeric; got"):  # ratings are never dates
        Interactions.from_pandas(df.assign(r=["2024-03-01"] * 3), rating="r")


@pytest.mark.parametrize("clock", ["10:00", "now", "today", "10:00:05", "9:30:05.1 PM",
                                   pd.Timestamp.now(tz="UTC").strftime("10:%y")])  # minutes equal to the year
def test_text_timestamps_dated_by_the_clock_are_refused(clock):
    """A time alone or "now" takes today's date in pandas: it would become the newest event, differently each run."""
    df = pd.DataFrame({"user": [1, 2, 3], "item": [1, 1, 1], "t": ["2024-03-01", clock, "2024-03-02"]})
    with pytest.raises(DataError, match=rf"column 't' holds '{clock}' \(row 1\), which has no date") as exc:
        Interactions.from_pandas(df, timestamp="t")
    assert exc.value.row == 1
    today = pd.Timestamp.now(tz="UTC")  # a dated value from today is a date like any other
    dated = df.assign(t=["2024-03-01", today.strftime("%Y-%m-%d %H:%M"), today.strftime("%d %b %Y")])
    assert Interactions.from_pandas(dated, timestamp="t").timestamps[1] > 1.7e9


@pytest.mark.parametrize("yearless", ["Dec 8", "Mar 1", "10am"])
def test_text_timestamps_without_a_year_are_refused(yearless):
    """pandas gives them year 1: they would become the log's oldest events."""
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": [yearless, "2024-03-02"]})
    # pandas 3 reads them as year 1, which the check names; pandas 2 cannot read them at all
    with pytest.raises(DataError, match=rf"'{yearless}' \((first at )?row 0\)"):
        Interactions.from_pandas(df, timestamp="t")


def test_a_zoned_date_near_new_year_is_a_date(monkeypatch):
    """Its year in UTC differs from the written one: it is still a date, not a clock reading."""
    monkeypatch.setattr(pd.Timestamp, "now", classmethod(lambda cls, tz=None: pd.Timestamp("2027-01-01 00:30", tz=tz)))
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": ["2026-12-31T20:00:00-05:00", "2027-01-01T09:00:00+14:00"]})
    assert Interactions.from_pandas(df, timestamp="t").timestamps.tolist() == [1798765200.0, 1798743600.0]


def test_text_timestamps_in_a_file_name_the_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,t\nu1,a,2024-03-01T10:00:00Z\nu2,a,2024-03-02T10:00:00Z\nu3,b,not-a-date\n")
    with pytest.raises(DataError, match=r"line 4: column 't' holds text dates.*'not-a-date'"):
        Interactions.from_csv(path, timestamp="t")
    path.write_text("user,item,t\nu1,a,2024-03-01T10:00:00Z\nu2,a,2024-03-02T10:00:00Z\n")
    assert Interactions.from_csv(path, timestamp="t").timestamps.tolist() == [1709287200.0, 1709373600.0]


def test_take_users(data):
    t = data.take_users([2, 0])
    assert t.user_ids.tolist() == [30, 10] and t.item_ids.tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(t.matrix.toarray(), [[5, 1, 0], [2, 0, 4]])
    assert ts_of(t) == {(30, "x"): 500, (30, "y"): 600, (10, "x"): 100, (10, "z"): 200}
    assert data.take_users([]).nnz == 0
    with pytest.raises(ShapeError, match=r"\[0, 3\)"):
        data.take_users([3])
    with pytest.raises(ShapeError):
        data.take_users([-1])


def test_take_items(data):
    t = data.take_items([2, 0])
    assert t.item_ids.tolist() == ["z", "x"] and t.user_ids.tolist() == [10, 20, 30]
    np.testing.assert_array_equal(t.matrix.toarray(), [[4, 2], [3.5, 0], [0, 5]])
    assert t.matrix.has_canonical_format
    assert ts_of(t) == {(10, "z"): 200, (10, "x"): 100, (20, "z"): 400, (30, "x"): 500}
    for bad in ([3], [-1]):
        with pytest.raises(ShapeError):
            data.take_items(bad)
    with pytest.raises(DataError, match="repeat"):
        data.take_items([0, 0])


def test_align_items(data):
    same = data.align_items(np.array(["x", "y", "z"], dtype=object))
    assert_same(same, data)
    r = data.align_items(["z", "x", "y"])
    assert r.item_ids.tolist() == ["z", "x", "y"]
    np.testing.assert_array_equal(r.matrix.toarray(), [[4, 2, 0], [3.5, 0, 3], [0, 5, 1]])
    assert ts_of(r) == ts_of(data)
    g = data.align_items(["z", "new", "x"], unknown="ignore")
    assert g.item_ids.tolist() == ["z", "new", "x"]
    np.testing.assert_array_equal(g.matrix.toarray(), [[4, 0, 2], [3.5, 0, 0], [0, 0, 5]])
    assert ts_of(g) == {k: v for k, v in ts_of(data).items() if k[1] != "y"}
    with pytest.raises(UnknownIdError, match="'y'"):
        data.align_items(["z", "x"])
    with pytest.raises(DataError, match="unique"):
        data.align_items(["x", "x", "y", "z"])
    with pytest.raises(DataError, match="'drop'"):
        data.align_items(["x"], unknown="drop")


def test_user_and_item_index(data):
    assert data.user_index([30, 10]).tolist() == [2, 0]
    assert data.user_index(20).tolist() == [1]
    assert data.item_index(["z", "x"]).tolist() == [2, 0]
    with pytest.raises(UnknownIdError, match="99"):
        data.user_index([10, 99])
    with pytest.raises(UnknownIdError, match="'w'"):
        data.item_index(["x", "w"])
    with pytest.raises(UnknownIdError, match="'10'"):
        data.user_index("10")  # a string is not the integer id
    assert data.item_index(["w", "y"], unknown="ignore").tolist() == [-1, 1]
    with pytest.raises(DataError, match="'skip'"):
        data.item_index(["x"], unknown="skip")


# ---------------------------------------------------------------- property test
_int_ids = st.integers(min_value=-3, max_value=6)
_str_ids = st.text(alphabet="abcé", min_size=0, max_size=2)
_bad_ids = st.one_of(st.none(), st.just(float("nan")), st.integers(0, 3), st.text("ab", max_size=1))


@st.composite
def logs(draw):
    n = draw(st.integers(1, 25))
    kinds = draw(st.sampled_from(["int", "str", "bad"]))
    ids = {"int": _int_ids, "str": _str_ids, "bad": _bad_ids}
    users = draw(st.lists(ids[kinds], min_size=n, max_size=n))
    items = draw(st.lists(draw(st.sampled_from([_int_ids, _str_ids])), min_size=n, max_size=n))
    ratings = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    df = pd.DataFrame({"user": pd.Series(users, dtype=object if kinds == "bad" else None),
                       "item": items, "rating": np.asarray(ratings, dtype=float),
                       "t": draw(st.permutations(range(n)))})  # distinct times: "last" is order free
    return df


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=logs(), seed=st.integers(0, 2**16), explicit=st.booleans())
def test_from_pandas_property(df, seed, explicit):
    kw = {"rating": "rating", "timestamp": "t"} if explicit else {"timestamp": "t"}
    try:
        d = Interactions.from_pandas(df, **kw)
    except DataError:
        return
    m = d.matrix
    assert m.format == "csr" and m.dtype == np.float32 and m.shape == (len(d.user_ids), len(d.item_ids))
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keys = rows * m.shape[1] + m.indices
    assert len(np.unique(keys)) == m.nnz and np.all(np.diff(keys) > 0)  # sorted, no duplicates
    assert m.nnz == len(df.drop_duplicates(["user", "item"]))
    assert d.user_ids.tolist() == sorted(set(df["user"])) and d.item_ids.tolist() == sorted(set(df["item"]))
    if explicit:  # the latest rating of every pair
        ref = df.sort_values("t").groupby(["user", "item"]).last()
        assert {k: v[0] for k, v in entries(d).items()} == ref["rating"].to_dict()
    else:  # one 1.0 per pair (presence), time is the latest; with duplicates="sum" the counts
        ref = df.groupby(["user", "item"])["t"].agg(["size", "max"])
        assert entries(d) == {k: (1.0, float(r["max"])) for k, r in ref.iterrows()}
        summed = Interactions.from_pandas(df, duplicates="sum", **kw)
        assert entries(summed) == {k: (float(r["size"]), float(r["max"])) for k, r in ref.iterrows()}
        assert summed.merged_rows == d.merged_rows == len(df) - d.nnz
    assert_same(Interactions.from_pandas(shuffled(df, seed), **kw), d)


def test_check_interactions_names_what_was_passed():
    data = Interactions.from_pandas(pd.DataFrame({"user": [1], "item": [2]}))
    assert check_interactions(data) is data
    with pytest.raises(DataError, match=r"must be an Interactions; got DataFrame \(build one with"):
        check_interactions(pd.DataFrame({"user": [1], "item": [2]}))
    with pytest.raises(DataError, match=r"train must be an Interactions; got csr_matrix \(wrap"):
        check_interactions(sp.csr_matrix((2, 2)), "train")


def test_a_ratings_column_left_unused_is_named():
    df = pd.DataFrame({"userId": [1, 1, 2], "movieId": [3, 4, 3], "rating": [1.0, 5.0, 2.0], "clicked": [1, 1, 1]})
    with pytest.warns(DataWarning, match=r"column 'rating' looks like ratings but is not used.*pass rating='rating'"):
        data = Interactions.from_pandas(df, "userId", "movieId")
    assert not data.has_ratings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Interactions.from_pandas(df, "userId", "movieId", rating="rating")  # used: no word
        Interactions.from_pandas(df.assign(rating=1.0), "userId", "movieId")  # all ones: a click flag


def test_one_column_cannot_be_both_users_and_items():
    df = pd.DataFrame({"uid": [1, 2], "iid": [3, 4]})
    with pytest.raises(DataError, match="the user and item columns are both 'uid'"):
        Interactions.from_pandas(df, "uid", "uid")


def test_the_unused_ratings_warning_points_at_the_callers_line(tmp_path):
    from recae.datasets import load_log
    path = tmp_path / "r.csv"
    pd.DataFrame({"userId": [1, 2], "movieId": [3, 4], "rating": [1.0, 5.0]}).to_csv(path, index=False)
    for read in (lambda: Interactions.from_csv(path, "userId", "movieId"),
                 lambda: load_log(path, user="userId", item="movieId")):
        with pytest.warns(DataWarning, match="looks like ratings") as record:
            read()
        assert record[0].filename == __file__


def test_an_id_column_that_is_the_index_gets_a_reset_index_hint():
    df = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [3.0, 4.0]})
    for frame in (df.set_index("userId"), df.groupby(["userId", "movieId"]).size().to_frame("n")):
        with pytest.raises(DataError, match=r"'userId' is the frame's index, not a column: call df.reset_index\(\) first"):
            Interactions.from_pandas(frame, user="userId", item="movieId")


def test_epoch_milliseconds_get_a_warning():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": [1577836800000, 1577836900000]})
    with pytest.warns(DataWarning, match=r"'t' holds epoch values past the year 3000 \(up to 1.578e\+12\): if they "
                                         r"are milliseconds, divide them by 1000"):
        data = Interactions.from_pandas(df, timestamp="t")
    assert data.timestamps.tolist() == [1577836800000.0, 1577836900000.0]  # kept as given: the order is right
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Interactions.from_pandas(df.assign(t=[1577836800, 1577836900]), timestamp="t")
