"""Fuzzing the loaders and the recommend API with random and hostile input.

Property: whatever comes in, the public API either answers with a well-formed result or
raises a documented recae exception (``RecaeError``); never a raw ``IndexError``,
``KeyError``, ``ZeroDivisionError``, ``TypeError`` or a ``ValueError`` from NumPy/pandas.
Well-formed means finite values, unique ids, seen items excluded and the same answer for
the same log in any row order. The example counts are fixed by ``settings`` below and
reported in docs/reliability.md.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recae
from recae import cli
from recae.datasets import load_csv, synthetic
from recae.exceptions import RecaeError
from recae.models.autorec import AutoRec

# derandomize + no example database: every run draws the same examples, whatever ran before
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Exceptions that must never escape the public API (bugs, not answers).
RAW = (IndexError, KeyError, ZeroDivisionError, TypeError, AttributeError, ValueError, OverflowError, RuntimeError)


def answer_or_documented(call, *args, **kwargs):
    """``call(...)``'s result, or None when it raised a RecaeError; any other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call(*args, **kwargs)
    except RecaeError:
        return None


def check_log(data: recae.Interactions) -> None:
    """Invariants of any Interactions the loaders hand out."""
    m = data.matrix
    assert m.format == "csr" and m.dtype == np.float32 and m.has_canonical_format
    assert np.all(np.isfinite(m.data))
    assert len(pd.unique(data.user_ids)) == data.n_users and len(pd.unique(data.item_ids)) == data.n_items
    assert data.nnz > 0
    if data.timestamps is not None:
        assert data.timestamps.shape == (data.nnz,) and np.all(np.isfinite(data.timestamps))


# ------------------------------------------------------------------ CSV text
cell = st.one_of(
    st.integers(-3, 30).map(str), st.sampled_from(["", "nan", "inf", "-inf", "NaN", "NULL", "1.5", "1e400", "five",
                                                    '"q,uoted"', '"', "é", "\u00a0", " 7 ", "0x1F", "True"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=4),
)


@st.composite
def csv_texts(draw):
    header = draw(st.sampled_from(["user,item,rating", "user,item", "userId,movieId,rating", "user;item;rating",
                                   "user,item,rating,extra", ""]))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=5).map(",".join), max_size=25))
    return "\n".join([header, *rows]) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(FUZZ, max_examples=150)
@given(text=csv_texts(), rating=st.sampled_from([None, "rating"]),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]), engine=st.sampled_from(["c", "python"]))
def test_fuzz_csv_text(text, rating, encoding, engine):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "log.csv")
        with open(path, "w", encoding=encoding, errors="replace", newline="") as f:
            f.write(text)
        data = answer_or_documented(load_csv, path, rating=rating, engine=engine)
    if data is not None:
        check_log(data)


@settings(FUZZ, max_examples=60)
@given(blob=st.binary(max_size=300))
def test_fuzz_csv_bytes(blob):
    """Arbitrary bytes (binary files, truncated multi-byte characters, NULs)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "log.csv")
        with open(path, "wb") as f:
            f.write(b"user,item\n" + blob)
        data = answer_or_documented(load_csv, path)
    if data is not None:
        check_log(data)


# ------------------------------------------------------------------ pandas frames
def column(n: int):
    """A column of length ``n`` of one of many dtypes, with NaNs, mixed types and odd values."""
    return st.one_of(
        st.lists(st.integers(-5, 20), min_size=n, max_size=n),
        st.lists(st.integers(-2**63, 2**64 - 1), min_size=n, max_size=n),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n),
        st.lists(st.sampled_from([0.0, 1.0, 2.0, np.nan]), min_size=n, max_size=n),
        st.lists(st.text(alphabet="ab1 ", max_size=2), min_size=n, max_size=n),
        st.lists(st.one_of(st.integers(0, 5), st.text(alphabet="xy", max_size=1), st.none(), st.floats()),
                 min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.binary(max_size=2), min_size=n, max_size=n),
        st.lists(st.datetimes(), min_size=n, max_size=n),
    )


@st.composite
def frames(draw):
    n = draw(st.integers(0, 20))
    df = pd.DataFrame({"user": draw(column(n)), "item": draw(column(n)), "rating": draw(column(n)),
                       "ts": draw(column(n))})
    if draw(st.booleans()):
        df["user"] = df["user"].astype("category")
    return df


@settings(FUZZ, max_examples=150)
@given(df=frames(), rating=st.sampled_from([None, "rating"]), timestamp=st.sampled_from([None, "ts"]),
       duplicates=st.sampled_from([None, "last", "sum", "first", "raise"]))
def test_fuzz_from_pandas(df, rating, timestamp, duplicates):
    data = answer_or_documented(recae.Interactions.from_pandas, df, rating=rating, timestamp=timestamp,
                                duplicates=duplicates)
    if data is None:
        return
    check_log(data)
    if duplicates in (None, "sum") and rating is None:
        # presence (None) or counts ("sum") whatever the row order: the same log reversed gives the same object
        again = recae.Interactions.from_pandas(df.iloc[::-1].reset_index(drop=True), timestamp=timestamp,
                                               duplicates=duplicates)
        np.testing.assert_array_equal(again.user_ids, data.user_ids)
        np.testing.assert_array_equal(again.item_ids, data.item_ids)
        assert (again.matrix != data.matrix).nnz == 0


# ------------------------------------------------------------------ the recommend API
request_id = st.one_of(st.integers(-3, 20), st.text(alphabet="ui0123", max_size=3), st.none(), st.floats(),
                       st.binary(max_size=2), st.booleans())
requests = st.one_of(request_id, st.lists(request_id, max_size=4), st.lists(st.lists(st.integers(0, 5), max_size=2), max_size=2))
sizes = st.one_of(st.integers(-2, 40), st.floats(-1, 40), st.none(), st.text(max_size=2), st.booleans())


@st.composite
def logs(draw):
    n = draw(st.integers(1, 50))
    users = draw(st.lists(st.integers(0, 10), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    if draw(st.booleans()):
        users, items = [f"u{u}" for u in users], [f"i{i}" for i in items]
    return pd.DataFrame({"user": users, "item": items})


MODELS = {"Popularity": lambda: recae.Popularity(device="cpu"), "EASE": lambda: recae.EASE(l2=1.0, device="cpu")}


def check_ranking(model, data, users, ids, scores, n):
    assert ids.shape == scores.shape and ids.shape[0] == len(users)
    assert ids.shape[1] <= min(n, data.n_items)
    for row, user in enumerate(users):
        ok = np.isfinite(scores[row])
        got = ids[row][ok].tolist()
        assert not np.isnan(scores[row]).any()
        assert len(set(got)) == len(got)  # unique
        seen = set(data.item_ids[data.matrix[data.user_index(user)[0]].indices].tolist())
        assert not seen & set(got)  # seen items excluded
        assert set(got) <= set(data.item_ids.tolist())
        assert np.all(np.diff(scores[row][ok]) <= 1e-6)  # best first


@settings(FUZZ, max_examples=120)
@given(df=logs(), name=st.sampled_from(sorted(MODELS)), n=sizes, asked=requests, items=st.one_of(st.none(), requests),
       exclude=st.one_of(st.none(), requests), history=st.one_of(requests, st.dictionaries(request_id, st.one_of(
           st.floats(), st.integers(-2, 3), st.text(max_size=1)), max_size=4)), seed=st.integers(0, 2**16))
def test_fuzz_recommend_api(df, name, n, asked, items, exclude, history, seed):
    torch.set_num_threads(1)
    data = recae.Interactions.from_pandas(df)
    model = MODELS[name]().fit(data)
    # hostile requests: an answer or a documented error
    answer_or_documented(model.recommend, asked, n=n, items=items, exclude=exclude)
    answer_or_documented(model.recommend_new, history, n=n, items=items, exclude=exclude, unknown="ignore")
    answer_or_documented(model.recommend_new, history, n=n)
    answer_or_documented(model.similar_items, asked, n=n)
    scores = answer_or_documented(model.score, sp.random(3, data.n_items, density=0.3, random_state=seed,
                                                          format="csr", dtype=np.float32))
    assert scores is not None and np.all(np.isfinite(scores))
    # well-formed answers for known users, invariant to the row order of the log
    users = list(data.user_ids[:3])
    k = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 5
    ids, sc = model.recommend(users, n=k)
    check_ranking(model, data, users, ids, sc, k)
    shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    ids2, sc2 = MODELS[name]().fit(recae.Interactions.from_pandas(shuffled)).recommend(users, n=k)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(sc2, sc, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ every entry point × hostile values
HOSTILE = [None, 0, -1, 1.5, np.nan, np.inf, "x", "", b"x", [], [[1]], [1, [2]], {}, {1: "a"}, {10: np.nan}, set(),
           object(), np.ones((2, 2)), np.array(["a"]), pd.DataFrame(), sp.coo_matrix((2, 5)), sp.csr_matrix((0, 4)),
           sp.csr_matrix(np.full((1, 4), np.nan)), sp.csr_matrix(-np.ones((1, 4))), 2**70, True, [None], [np.nan],
           ["10", 10], (1, 2), np.float64(1.0), lambda: None]


def entry_points(data, models, tmp):
    """(name, call) for every public entry point, each taking one hostile argument."""
    frame = data.to_pandas()
    out = [
        ("Interactions(matrix)", lambda h: recae.Interactions(h)),
        ("Interactions(user_ids)", lambda h: recae.Interactions(sp.csr_matrix(np.ones((2, 2))), h)),
        ("Interactions(timestamps)", lambda h: recae.Interactions(sp.csr_matrix(np.ones((2, 2))), None, None, h)),
        ("from_pandas(df)", lambda h: recae.Interactions.from_pandas(h)),
        ("from_pandas(user)", lambda h: recae.Interactions.from_pandas(frame, user=h)),
        ("from_pandas(rating)", lambda h: recae.Interactions.from_pandas(frame, rating=h)),
        ("from_pandas(timestamp)", lambda h: recae.Interactions.from_pandas(frame, timestamp=h)),
        ("from_pandas(duplicates)", lambda h: recae.Interactions.from_pandas(frame, duplicates=h)),
        ("from_csv(path)", lambda h: recae.Interactions.from_csv(h)),
        ("from_parquet(path)", lambda h: recae.Interactions.from_parquet(h)),
        ("from_scipy", lambda h: recae.Interactions.from_scipy(h)),
        ("filter", lambda h: data.filter(h)),
        ("binarize", lambda h: data.binarize(h)),
        ("take_users", lambda h: data.take_users(h)),
        ("take_items", lambda h: data.take_items(h)),
        ("align_items", lambda h: data.align_items(h)),
        ("user_index", lambda h: data.user_index(h)),
        ("holdout_split(data)", lambda h: recae.holdout_split(h)),
        ("holdout_split(test_size)", lambda h: recae.holdout_split(data, h)),
        ("strong_split(n_heldout)", lambda h: recae.strong_generalization_split(data, h)),
        ("temporal_split(k)", lambda h: recae.temporal_split(data, h)),
        ("evaluate(split)", lambda h: recae.evaluate(models[0], h)),
        ("evaluate(k)", lambda h: recae.evaluate(models[0], recae.holdout_split(data, 0.3), k=h)),
        ("load", lambda h: recae.load(h)),
        ("load_movielens(variant)", lambda h: recae.datasets.load_movielens(h, download=False)),
        ("load_movielens(data_dir)", lambda h: recae.datasets.load_movielens("100k", data_dir=h, download=False)),
        ("synthetic(n_users)", lambda h: synthetic(h, 10)),
        ("synthetic(random_state)", lambda h: synthetic(10, 10, random_state=h)),
    ]
    for m in models:
        cls = type(m)
        out += [
            (f"{cls.__name__}.fit", lambda h, cls=cls: cls(device="cpu").fit(h)),
            (f"{cls.__name__}.fit(valid)", lambda h, cls=cls: cls(device="cpu").fit(data, valid=h)),
            (f"{cls.__name__}.recommend", lambda h, m=m: m.recommend(h)),
            (f"{cls.__name__}.recommend(n)", lambda h, m=m: m.recommend(data.user_ids[0], n=h)),
            (f"{cls.__name__}.recommend(items)", lambda h, m=m: m.recommend(data.user_ids[0], items=h)),
            (f"{cls.__name__}.recommend(exclude)", lambda h, m=m: m.recommend(data.user_ids[0], exclude=h)),
            (f"{cls.__name__}.recommend_new", lambda h, m=m: m.recommend_new(h)),
            (f"{cls.__name__}.recommend_new(n)", lambda h, m=m: m.recommend_new([data.item_ids[0]], n=h)),
            (f"{cls.__name__}.recommend_new(unknown)", lambda h, m=m: m.recommend_new([data.item_ids[0]], unknown=h)),
            (f"{cls.__name__}.score", lambda h, m=m: m.score(h)),
            (f"{cls.__name__}.similar_items", lambda h, m=m: m.similar_items(h)),
            (f"{cls.__name__}.save", lambda h, m=m: m.save(h)),
        ]
    return out


def predict_points(data, model):
    return [("predict(users)", lambda h: model.predict(h, data.item_ids[0])),
            ("predict(items)", lambda h: model.predict(data.user_ids[0], h))]


def raw_escapes(points) -> tuple[list[str], int]:
    """Messages of the non-recae exceptions raised by each (name, call) on each hostile value."""
    raw, calls = [], 0
    for name, call in points:
        for value in HOSTILE:
            calls += 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    call(value)
            except RecaeError:
                pass
            except RAW as exc:
                raw.append(f"{name}({value!r:.40}): {type(exc).__name__}: {exc}"[:300])
    return raw, calls


def test_hostile_values_at_every_entry_point(tmp_path, monkeypatch):
    """Every entry point × every hostile value: a result or a RecaeError, nothing raw."""
    monkeypatch.chdir(tmp_path)  # hostile save paths such as "x" land here
    torch.set_num_threads(1)
    data = synthetic(30, 12, random_state=0)
    models = [recae.Popularity(device="cpu").fit(data), recae.EASE(l2=1.0, device="cpu").fit(data),
              recae.MultDAE(hidden_dims=(4,), epochs=1, device="cpu", random_state=0).fit(data),
              AutoRec(hidden=4, epochs=1, device="cpu", random_state=0).fit(data)]
    points = entry_points(data, models, tmp_path)
    raw, calls = raw_escapes(points)
    assert calls == len(points) * len(HOSTILE)
    assert not raw, f"{len(raw)} raw exception(s) escaped:\n" + "\n".join(raw)


def test_hostile_values_at_predict():
    torch.set_num_threads(1)
    data = synthetic(30, 12, random_state=0)
    model = AutoRec(hidden=4, epochs=1, device="cpu", random_state=0).fit(data)
    raw, _ = raw_escapes(predict_points(data, model))
    assert not raw, "\n".join(raw)


@pytest.mark.parametrize("argv", [
    ["recommend", "--model-file", "", "--user", "1"],
    ["recommend", "--model-file", "/dev/null", "--user", "1"],
    ["recommend", "--model-file", ".", "--history", ","],
    ["fit", "--data", "/dev/null", "--out", "m.recae"],
    ["fit", "--data", ".", "--out", "m.recae"],
    ["fit", "--data", "synthetic", "--param", "l2=-5", "--out", "m.recae"],
    ["fit", "--data", "synthetic", "--param", "=3", "--out", "m.recae"],
    ["fit", "--data", "synthetic", "--min-user", "100000", "--out", "m.recae"],
    ["evaluate", "--data", "synthetic", "--model", "popularity", "--heldout", "0.9"],
    ["evaluate", "--data", "synthetic", "--model", "popularity", "--k", "0"],
], ids=lambda a: " ".join(a)[:60])
def test_cli_hostile_arguments_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("recae: error: ") and "Traceback" not in err
