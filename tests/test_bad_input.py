"""Every public entry point against every kind of bad input, as one table.

Each case names the entry point, the bad input, the documented exception type it must
raise and fragments that must appear in the message: what was expected and what was got
(and, where there is one, the fix). ``test_bad_input`` runs the table; ``CASES`` is counted
in docs/reliability.md.
"""

from __future__ import annotations

import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import recae
from recae import cli
from recae.datasets import load_csv, load_movielens, load_parquet, movielens_official_split, synthetic
from recae.exceptions import (ConversionWarning, DataError, DatasetNotFoundError, MemoryBudgetError, ModelFileError,
                              NotFittedError, ShapeError, TrainingError, UnknownIdError)
from recae.io import FORMAT_VERSION
from recae.models.autorec import AutoRec


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A small log, fitted models and files of every bad kind, shared by the table."""
    d = tmp_path_factory.mktemp("bad")
    df = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3, 4], "item": [10, 11, 10, 12, 11, 12, 13],
                       "rating": [5.0, 4, 3, 5, 1, 2, 4], "ts": [1, 2, 3, 4, 5, 6, 7]})
    data = recae.Interactions.from_pandas(df, rating="rating", timestamp="ts")
    torch.set_num_threads(1)
    ease = recae.EASE(l2=1.0, device="cpu").fit(data)
    pop = recae.Popularity(device="cpu").fit(data)
    good = d / "good.recae"
    ease.save(good)
    raw = good.read_bytes()
    newer = d / "newer.recae"
    # the same model with a format version from the future (checksums recomputed, so only the version is wrong)
    from recae import io as rio
    meta, tensors = rio.read_model_file(good)
    meta["format_version"] = FORMAT_VERSION + 1
    meta["meta_sha256"] = rio._meta_checksum(meta)
    from recae.atomic import atomic_save_tensors
    import json
    atomic_save_tensors(tensors, newer, {"recae": json.dumps(meta)})
    # one tensor byte flipped: the tensors checksum must catch it (the last bytes are tensor data)
    flipped = bytearray(raw)
    flipped[-1] ^= 0xFF
    files = SimpleNamespace(
        good=str(good),
        pickle=_write(d / "model.pkl", pickle.dumps({"B": np.eye(2)})),
        truncated=_write(d / "truncated.recae", raw[: len(raw) // 2]),
        newer=str(newer),
        flipped=_write(d / "flipped.recae", bytes(flipped)),
        too_many_fields=_write(d / "fields.csv", "user,item,rating\n1,10,5\n2,11,4,9\n3,12,3\n"),
        every_row_longer=_write(d / "longer.csv", "user,item\n1,10,5\n2,20,3\n"),
        short_line=_write(d / "short.csv", "user,item,rating\n1,10,5\n2\n3,12,3\n"),
        nan_rating=_write(d / "nan.csv", "user,item,rating\n1,10,5\n2,11,4\n3,12,\n"),
        text_rating=_write(d / "text.csv", "user,item,rating\n1,10,5\n\n2,11,five\n"),
        mixed_ids=_write(d / "mixed.csv", "user,item\n1,10\n2,11\n"),
        latin1=_write(d / "latin1.csv", "user,item\nJosé,10\n", "latin-1"),
        utf16=_write(d / "utf16.csv", "user,item\n1,10\n", "utf-16"),
        bom=_write(d / "bom.csv", "user,item\n1,10\n", "utf-8-sig"),  # pandas strips the mark: it loads
        empty=_write(d / "empty.csv", ""),
        header_only=_write(d / "header.csv", "user,item,rating\n"),
        misnamed=_write(d / "misnamed.csv", "userId,movieId\n1,10\n"),
        not_parquet=_write(d / "log.parquet", "user,item\n1,10\n"),
        missing=str(d / "absent.csv"),
        folder=str(d),
        out=str(d / "out.recae"),
    )
    df.to_parquet(d / "good.parquet")
    files.parquet = str(d / "good.parquet")
    return SimpleNamespace(df=df, data=data, ease=ease, pop=pop, f=files, dir=d)


def nan_model(c):
    """A fitted EASE whose weights hold a NaN, as a diverged model would."""
    m = recae.EASE(l2=1.0, device="cpu").fit(c.data)
    m.B_[0, 1] = float("nan")
    return m


# (id, call(ctx), exception type, message fragments: the expected value, the actual value, the fix)
CASES = [
    # ------------------------------------------------------------ Interactions.from_pandas
    ("from_pandas/missing-column", lambda c: recae.Interactions.from_pandas(c.df.rename(columns={"user": "userId"})),
     DataError, ["'user'", "available columns", "'userId'", "Did you mean 'userId'"]),
    ("from_pandas/misnamed-case", lambda c: recae.Interactions.from_pandas(c.df.rename(columns={"item": "Item"})),
     DataError, ["'item'", "'Item'", "Did you mean 'Item'"]),
    ("from_pandas/nan-rating", lambda c: recae.Interactions.from_pandas(c.df.assign(rating=[5, np.nan, 3, 5, 1, 2, 4]), rating="rating"),
     DataError, ["'rating'", "NaN or infinite", "row 1", "Drop or fill"]),
    ("from_pandas/inf-rating", lambda c: recae.Interactions.from_pandas(c.df.assign(rating=[5, 4, 3, np.inf, 1, 2, 4]), rating="rating"),
     DataError, ["NaN or infinite", "row 3", "inf"]),
    ("from_pandas/non-numeric-rating", lambda c: recae.Interactions.from_pandas(c.df.assign(rating=["5", "4", "x", 5, 1, 2, 4]), rating="rating"),
     DataError, ["'rating'", "must be numeric", "'x'", "row 2"]),
    ("from_pandas/empty-log", lambda c: recae.Interactions.from_pandas(c.df.iloc[:0]),
     DataError, ["empty", "0 rows", "'user'"]),
    ("from_pandas/missing-id", lambda c: recae.Interactions.from_pandas(c.df.assign(user=[1, None, 2, 2, 3, 3, 4])),
     DataError, ["'user'", "1 missing id", "row 1", "dropna"]),
    ("from_pandas/mixed-id-types", lambda c: recae.Interactions.from_pandas(c.df.assign(item=[10, "11", 10, 12, 11, 12, 13])),
     DataError, ["one type", "all integers or all strings", "'mixed-integer'", "row 1 a str", ".astype(str)"]),
    ("from_pandas/fractional-float-id", lambda c: recae.Interactions.from_pandas(c.df.assign(user=[1, 1.5, 2, 2, 3, 3, 4])),
     DataError, ["non-integral", "1.5", "integers or strings"]),
    ("from_pandas/bool-ids", lambda c: recae.Interactions.from_pandas(c.df.assign(user=[True, False] * 3 + [True])),
     DataError, ["one type", "'boolean'"]),
    ("from_pandas/duplicate-rows-raise", lambda c: recae.Interactions.from_pandas(pd.concat([c.df, c.df.iloc[:1]]), duplicates="raise"),
     DataError, ["duplicate (user, item) row", "user 1", "item 10", "duplicates='last' or 'sum'"]),
    ("from_pandas/duplicates-rule", lambda c: recae.Interactions.from_pandas(c.df, duplicates="max"),
     DataError, ["duplicates must be one of", "'last'", "'max'"]),
    ("from_pandas/user-None", lambda c: recae.Interactions.from_pandas(c.df, user=None),
     DataError, ["user must name", "None"]),
    ("from_pandas/unhashable-column-name", lambda c: recae.Interactions.from_pandas(c.df, rating=["rating"]),
     DataError, ["rating must be a column name", "list"]),
    ("from_pandas/not-a-dataframe", lambda c: recae.Interactions.from_pandas({"user": [1], "item": [2]}),
     DataError, ["pandas DataFrame", "dict"]),
    ("from_pandas/missing-timestamp", lambda c: recae.Interactions.from_pandas(
        c.df.assign(ts=pd.to_datetime([1, 2, None, 4, 5, 6, 7], unit="s")), timestamp="ts"),
     DataError, ["'ts'", "missing timestamp", "row 2"]),
    # ------------------------------------------------------------ Interactions.from_csv / load_csv
    ("from_csv/every-row-longer", lambda c: recae.Interactions.from_csv(c.f.every_row_longer), DataError,
     ["more fields than the header's 2", "['user', 'item']", "from line 2", "shifted"]),
    ("from_csv/unknown-option", lambda c: recae.Interactions.from_csv(c.f.mixed_ids, bogus=1), DataError,
     ["could not read", "bogus"]),
    ("from_pandas/dates-in-two-formats", lambda c: recae.Interactions.from_pandas(pd.DataFrame(
        {"user": [1, 2, 3], "item": [2, 3, 4], "t": ["01/02/2020", "13/02/2020", "02/03/2020"]}), timestamp="t"),
     DataError, ["pandas inferred no single format", "'01/02/2020' (row 0) reads as 2020-01-02 or 2020-02-01", "ISO 8601"]),
    # every day 12 or lower: before, read month-first without a word (a European log's re-rating lost)
    ("from_pandas/dates-either-order", lambda c: recae.Interactions.from_pandas(pd.DataFrame(
        {"user": [1, 1, 2], "item": [2, 2, 4], "t": ["05/03/2024", "02/04/2024", "01/03/2024"]}), timestamp="t"),
     DataError, ["'05/03/2024' (row 0) reads as 2024-05-03 or 2024-03-05", "no value has a day past 12",
                 "ISO 8601"]),
    ("from_pandas/multiindex-level", lambda c: recae.Interactions.from_pandas(
        pd.DataFrame([[1, 3], [2, 4]], columns=pd.MultiIndex.from_tuples([("a", "user"), ("a", "item")])),
        user="a", item="a"), DataError, ["columns are a MultiIndex", "'a' is not one column", "full tuple"]),
    ("take_users/past-int64", lambda c: c.data.take_users(np.array([2**63], dtype=np.uint64)), DataError,
     ["positions below 2**63", "9223372036854775808"]),
    ("from_pandas/timedelta-timestamps", lambda c: recae.Interactions.from_pandas(pd.DataFrame(
        {"user": [1, 2], "item": [2, 3], "t": pd.to_timedelta([1, 2], unit="s")}), timestamp="t"),
     DataError, ["column 't' must hold dates or epoch seconds", "timedelta64"]),
    ("from_pandas/complex-ratings", lambda c: recae.Interactions.from_pandas(pd.DataFrame(
        {"user": [1, 2], "item": [2, 3], "r": np.array([1 + 1j, 2])}), rating="r"),
     DataError, ["column 'r' must hold real numbers", "complex128"]),
    ("align_items/strings-against-integers", lambda c: recae.Interactions(
        sp.csr_matrix(np.ones((1, 2))), user_ids=[7], item_ids=np.array(["10", "20"], dtype=object)).align_items(
        [10, 20], unknown="ignore"), DataError, ["item ids here are strings", "catalogue's are integers", "no item matches"]),
    ("from_csv/too-many-fields", lambda c: recae.Interactions.from_csv(c.f.too_many_fields),
     DataError, ["fields.csv", "line 3", "Expected 3 fields", "saw 4"]),
    ("from_csv/too-many-fields-pyarrow", lambda c: recae.Interactions.from_csv(c.f.too_many_fields, engine="pyarrow"),
     DataError, ["fields.csv", "line 3"]),
    ("from_csv/too-many-fields-python", lambda c: recae.Interactions.from_csv(c.f.too_many_fields, engine="python"),
     DataError, ["fields.csv", "line 3"]),
    ("from_csv/short-line", lambda c: load_csv(c.f.short_line),
     DataError, ["short.csv, line 3", "'item'", "missing id", "keep_default_na=False"]),
    ("from_csv/nan-rating-line", lambda c: load_csv(c.f.nan_rating, rating="rating"),
     DataError, ["nan.csv, line 4", "NaN or infinite"]),
    ("from_csv/text-rating-after-blank-line", lambda c: load_csv(c.f.text_rating, rating="rating"),
     DataError, ["text.csv, line 4", "must be numeric", "'five'"]),
    ("from_csv/latin1-as-utf8", lambda c: load_csv(c.f.latin1),
     DataError, ["latin1.csv", "not valid utf-8", "encoding='latin-1'"]),
    ("from_csv/utf16-as-utf8", lambda c: load_csv(c.f.utf16),
     DataError, ["utf16.csv", "not valid utf-8", "encoding="]),
    ("from_pandas/byte-order-mark", lambda c: recae.Interactions.from_pandas(c.df.rename(columns={"user": "\ufeffuser"})),
     DataError, ["'user'", "byte-order mark", "encoding='utf-8-sig'"]),
    ("from_csv/unknown-encoding", lambda c: load_csv(c.f.mixed_ids, encoding="utf-99"),
     DataError, ["unknown encoding 'utf-99'", "'latin-1'"]),
    ("from_csv/empty-file", lambda c: load_csv(c.f.empty), DataError, ["empty.csv", "holds no data"]),
    ("from_csv/header-only", lambda c: load_csv(c.f.header_only), DataError, ["empty", "0 rows"]),
    ("from_csv/misnamed-columns", lambda c: load_csv(c.f.misnamed),
     DataError, ["'user'", "['userId', 'movieId']", "Pass user=<column name>"]),
    ("from_csv/missing-file", lambda c: load_csv(c.f.missing), DataError, ["no such file", "absent.csv"]),
    ("from_csv/directory", lambda c: load_csv(c.f.folder), DataError, ["is a directory"]),
    ("from_csv/path-None", lambda c: load_csv(None), DataError, ["str or os.PathLike", "NoneType"]),
    ("from_csv/dtype-option-mismatch", lambda c: load_csv(c.f.text_rating, rating="rating", dtype={"rating": float}),
     DataError, ["text.csv", "five"]),
    # ------------------------------------------------------------ from_parquet / load_parquet
    ("from_parquet/missing-column", lambda c: load_parquet(c.f.parquet, user="uid"),
     DataError, ["'uid'", "available columns", "'user'"]),
    ("from_parquet/not-parquet", lambda c: load_parquet(c.f.not_parquet), DataError, ["log.parquet", "as Parquet"]),
    ("from_parquet/path-int", lambda c: load_parquet(3), DataError, ["str or os.PathLike", "int"]),
    # ------------------------------------------------------------ Interactions / from_scipy
    ("Interactions/dense-array", lambda c: recae.Interactions(np.ones((2, 2))),
     DataError, ["scipy.sparse", "(n_users, n_items)", "ndarray", "csr_matrix"]),
    ("Interactions/nan-entry", lambda c: recae.Interactions.from_scipy(sp.csr_matrix(np.array([[np.nan, 1.0]]))),
     DataError, ["1 NaN or infinite"]),
    ("Interactions/transposed-ids", lambda c: recae.Interactions(sp.csr_matrix(np.ones((2, 3))), user_ids=[1, 2, 3]),
     ShapeError, ["user_ids has shape (3,)", "expected (2,)", "(2, 3)"]),
    ("Interactions/duplicate-ids", lambda c: recae.Interactions(sp.csr_matrix(np.ones((2, 2))), user_ids=[7, 7]),
     DataError, ["user ids must be unique", "repeated: [7]"]),
    ("Interactions/mixed-ids", lambda c: recae.Interactions(sp.csr_matrix(np.ones((2, 2))), item_ids=[1, "a"]),
     DataError, ["one type", "row 1 a str"]),
    ("Interactions/ragged-ids", lambda c: recae.Interactions(sp.csr_matrix(np.ones((2, 2))), item_ids=[[1], [2, 3]]),
     DataError, ["item_ids must be a flat sequence", "[[1], [2, 3]]"]),
    ("Interactions/timestamps-length", lambda c: recae.Interactions(sp.csr_matrix(np.ones((2, 2))), timestamps=[1, 2]),
     ShapeError, ["timestamps has shape (2,)", "expected (4,)"]),
    ("Interactions/timestamps-text", lambda c: recae.Interactions(sp.csr_matrix(np.ones((1, 2))), timestamps=["a", "b"]),
     DataError, ["timestamps must be", "['a', 'b']"]),
    ("filter/min_user-text", lambda c: c.data.filter(min_user="5"), DataError, ["min_user must be an integer", "'5'"]),
    ("binarize/threshold-None", lambda c: c.data.binarize(None), DataError, ["threshold must be a finite number", "None"]),
    ("binarize/threshold-past-float", lambda c: c.data.binarize(10**400), DataError, ["threshold must be a finite number", "int"]),
    ("filter/min_user-negative", lambda c: c.data.filter(min_user=-1), DataError, ["min_user must be an integer in [1, inf]", "-1"]),
    ("take_users/out-of-range", lambda c: c.data.take_users([9]), ShapeError, ["[0, 4)", "max 9"]),
    ("take_users/float-rows", lambda c: c.data.take_users([0.5]), DataError, ["integer positions", "float64"]),
    # ------------------------------------------------------------ fit
    ("fit/empty-matrix", lambda c: recae.EASE().fit(sp.csr_matrix((3, 4))),
     DataError, ["training data is empty", "(3, 4)", "0 entries", "at least one"]),
    ("fit/dense-array", lambda c: recae.Popularity().fit(np.ones((2, 2))),
     DataError, ["Interactions or a scipy.sparse", "ndarray", "scipy.sparse.csr_matrix"]),
    ("fit/dataframe", lambda c: recae.Popularity().fit(c.df), DataError, ["Interactions or a scipy.sparse", "DataFrame"]),
    ("fit/nan-entry", lambda c: recae.EASE().fit(sp.csr_matrix(np.array([[1.0, np.nan]]))),
     DataError, ["training data", "1 NaN or infinite"]),
    ("fit/negative-values", lambda c: recae.EASE(l2=1.0).fit(sp.csr_matrix(np.array([[1.0, -2.0], [0, 1]]))),
     DataError, ["1 negative value", "min -2", ">= 0", "binarize"]),
    ("fit/negative-ratings-neural", lambda c: recae.MultVAE(epochs=1).fit(
        recae.Interactions.from_pandas(c.df.assign(rating=c.df.rating - 3), rating="rating")),
     DataError, ["negative value", "MultVAE", "binarize"]),
    ("fit/unknown-option", lambda c: recae.EASE().fit(c.data, epochs=3), DataError, ["does not take ['epochs']", "valid"]),
    ("fit/valid-other-items", lambda c: recae.MultDAE(epochs=1).fit(c.data, valid=(sp.csr_matrix((2, 3)), sp.csr_matrix((2, 3)))),
     ShapeError, ["3 items", "training data has 4"]),
    ("fit/valid-wrong-type", lambda c: recae.MultDAE(epochs=1).fit(c.data, valid=[1, 2, 3]),
     DataError, ["StrongSplit, HoldoutSplit or (fold_in, target)", "list"]),
    ("fit/bad-hyper-parameter", lambda c: recae.EASE(l2=-1).fit(c.data), DataError, ["l2 must be a finite number >= 0", "-1"]),
    ("set_params/unknown", lambda c: recae.EASE().set_params(lambda_=3), DataError, ["'lambda_'", "valid parameters", "'l2'"]),
    # ------------------------------------------------------------ recommend
    ("recommend/unfitted", lambda c: recae.EASE().recommend(1), NotFittedError, ["not fitted", "fit(data)"]),
    ("recommend/unknown-user", lambda c: c.ease.recommend(99), UnknownIdError,
     ["1 unknown user id", "[99]", "integers like [1, 2, 3]", "4 in all"]),
    ("recommend/string-id-for-int-model", lambda c: c.ease.recommend("1"), UnknownIdError, ["['1']", "integers like"]),
    ("recommend/n-zero", lambda c: c.ease.recommend(1, n=0), DataError, ["n must be a positive integer", "got 0"]),
    ("recommend/n-negative", lambda c: c.ease.recommend(1, n=-3), DataError, ["positive integer", "-3"]),
    ("recommend/n-float", lambda c: c.ease.recommend(1, n=2.5), DataError, ["positive integer", "2.5"]),
    ("recommend/n-text", lambda c: c.ease.recommend(1, n="10"), DataError, ["positive integer", "'10'"]),
    ("recommend/n-bool", lambda c: c.ease.recommend(1, n=True), DataError, ["positive integer", "True"]),
    ("recommend/2d-users", lambda c: c.pop.recommend([[1, 2], [3, 4]]), DataError, ["1-D", "(2, 2)"]),
    ("recommend/ragged-users", lambda c: c.pop.recommend([1, [2, 3]]), DataError, ["user ids", "flat sequence", "[1, [2, 3]]"]),
    ("recommend/unknown-candidate", lambda c: c.ease.recommend(1, items=[10, 77]), UnknownIdError, ["unknown item id", "[77]"]),
    ("recommend/unknown-exclude", lambda c: c.ease.recommend(1, exclude=["x"]), UnknownIdError, ["unknown item id", "['x']"]),
    ("recommend/mixed-id-types", lambda c: c.ease.recommend([1, "x"]), UnknownIdError, ["1 unknown user id", "['x']"]),
    ("recommend/mixed-exclude", lambda c: c.ease.recommend(1, exclude=[10, "x"]), UnknownIdError, ["1 unknown item id", "['x']"]),
    ("recommend/exclude-seen-text", lambda c: c.ease.recommend(1, exclude_seen="no"), DataError,
     ["exclude_seen must be True or False", "'no'"]),
    ("recommend/nan-scores", lambda c: nan_model(c).recommend(1), TrainingError,
     ["NaN or +inf score", "expected finite scores", "refit"]),
    # ------------------------------------------------------------ recommend_new
    ("recommend_new/unknown-items", lambda c: c.ease.recommend_new([10, 99]), UnknownIdError, ["[99]", "known item ids"]),
    ("recommend_new/unknown-rule", lambda c: c.ease.recommend_new([10], unknown="skip"),
     DataError, ["unknown must be one of", "'raise', 'ignore'", "'skip'"]),
    ("recommend_new/transposed-matrix", lambda c: c.ease.recommend_new(sp.csr_matrix(np.ones((4, 2)))),
     ShapeError, ["(4, 2)", "fit on 4 items", "item×user"]),
    ("recommend_new/wrong-width", lambda c: c.ease.recommend_new(sp.csr_matrix((1, 7))), ShapeError, ["7 columns", "4 items"]),
    ("recommend_new/nan-value", lambda c: c.ease.recommend_new({10: float("nan")}), DataError, ["finite numbers", "nan", "item 10"]),
    ("recommend_new/text-value", lambda c: c.ease.recommend_new({10: "high"}), DataError, ["finite numbers", "'high'"]),
    ("recommend_new/negative-value", lambda c: c.ease.recommend_new({10: -1.0}), DataError, ["history has 1 negative", "min -1"]),
    ("recommend_new/object", lambda c: c.ease.recommend_new(object()), DataError, ["list of item ids", "object"]),
    ("recommend_new/list-value", lambda c: c.ease.recommend_new({10: [1, 2]}), DataError, ["finite numbers", "[1, 2] (list)"]),
    ("recommend_new/bool-value", lambda c: c.ease.recommend_new({10: True}), DataError, ["finite numbers", "True (bool)"]),
    ("recommend_new/huge-int", lambda c: c.ease.recommend_new({10: 10**400}), DataError, ["finite numbers", "at most 3.4e+38"]),
    ("recommend_new/past-float32", lambda c: c.ease.recommend_new({10: 1e39}), DataError, ["1e+39 (float)", "item 10"]),
    ("recommend_new/negative-interactions", lambda c: c.ease.recommend_new(recae.Interactions(
        sp.csr_matrix(np.array([[-1.0, 1.0]])), user_ids=[7], item_ids=[10, 11])), DataError, ["history has 1 negative"]),
    ("recommend_new/complex-matrix", lambda c: c.ease.recommend_new(sp.csr_matrix(np.array([[1j, 0, 0, 0]]))),
     DataError, ["real numbers", "complex"]),
    ("recommend_new/past-float32-matrix", lambda c: c.ease.recommend_new(sp.csr_matrix(np.array([[1e300, 0, 0, 0]]))),
     DataError, ["1 NaN or infinite", "as float32", "3.4e+38"]),
    ("recommend_new/exclude-seen-none", lambda c: c.ease.recommend_new([10], exclude_seen=None), DataError,
     ["exclude_seen must be True or False", "None"]),
    ("recommend_new/nan-scores", lambda c: nan_model(c).recommend_new([10]), TrainingError, ["NaN or +inf score"]),
    # ------------------------------------------------------------ score, similar_items
    ("score/list", lambda c: c.ease.score([10, 11]), DataError, ["score expects", "(n_rows, 4)", "list", "recommend_new"]),
    ("score/wrong-width", lambda c: c.ease.score(sp.csr_matrix((2, 3))), ShapeError, ["(2, 3)", "4 items"]),
    ("score/unknown-items", lambda c: c.ease.score(recae.Interactions(sp.csr_matrix(np.ones((1, 2))), user_ids=[7],
                                                                      item_ids=[10, 99])),
     UnknownIdError, ["[99]", "unknown='ignore'"]),
    ("score/nan-entry", lambda c: c.ease.score(sp.csr_matrix(np.array([[np.nan, 0, 0, 1.0]]))), DataError, ["history", "NaN"]),
    ("score/nan-weights", lambda c: nan_model(c).score(sp.csr_matrix(np.ones((1, 4)))), TrainingError, ["NaN or +inf", "row 0"]),
    ("similar_items/unknown", lambda c: c.ease.similar_items(5), UnknownIdError, ["unknown item id", "[5]"]),
    ("similar_items/n-zero", lambda c: c.ease.similar_items(10, n=0), DataError, ["positive integer", "got 0"]),
    # ------------------------------------------------------------ model files
    ("save/unfitted", lambda c: recae.EASE().save(c.f.out), NotFittedError, ["not fitted"]),
    ("save/path-None", lambda c: c.ease.save(None), ModelFileError, ["str or os.PathLike", "NoneType"]),
    ("save/into-directory", lambda c: c.ease.save(c.f.folder), ModelFileError, ["is a directory"]),
    ("load/path-None", lambda c: recae.load(None), ModelFileError, ["str or os.PathLike", "NoneType"]),
    ("load/missing", lambda c: recae.load(c.f.missing), ModelFileError, ["no model file", "absent.csv"]),
    ("load/pickle", lambda c: recae.load(c.f.pickle), ModelFileError, ["model.pkl", "not a recae model file"]),
    ("load/truncated", lambda c: recae.load(c.f.truncated), ModelFileError, ["truncated.recae", "not a recae model file"]),
    ("load/newer-version", lambda c: recae.load(c.f.newer), ModelFileError,
     [f"model format {FORMAT_VERSION + 1}", f"({FORMAT_VERSION})", "upgrade recae"]),
    ("load/wrong-checksum", lambda c: recae.load(c.f.flipped), ModelFileError, ["failed its checksum", "SHA-256"]),
    ("load/csv-file", lambda c: recae.load(c.f.mixed_ids), ModelFileError, ["not a recae model file"]),
    ("load/wrong-class", lambda c: recae.Popularity.load(c.f.good), ModelFileError, ["holds an EASE (recommender model)", "not a Popularity"]),
    # ------------------------------------------------------------ splits and evaluation
    ("holdout_split/dataframe", lambda c: recae.holdout_split(c.df), DataError, ["Interactions", "DataFrame", "from_pandas"]),
    ("holdout_split/test_size", lambda c: recae.holdout_split(c.data, 1.5), DataError, ["test_size must lie in [0, 1)", "1.5"]),
    ("holdout_split/test_size-text", lambda c: recae.holdout_split(c.data, "0.2"), DataError, ["finite number", "'0.2'"]),
    ("holdout_split/seed", lambda c: recae.holdout_split(c.data, random_state="x"), DataError, ["random_state", "'x'"]),
    ("temporal_split/no-timestamps", lambda c: recae.temporal_split(recae.Interactions.from_pandas(c.df)),
     DataError, ["needs timestamps", "timestamp=<column>"]),
    ("temporal_split/k-zero", lambda c: recae.temporal_split(c.data, k=0), DataError, ["k must be >= 1", "k=0"]),
    ("strong_split/too-many-heldout", lambda c: recae.strong_generalization_split(c.data, n_heldout=2),
     DataError, ["2 users per held-out part", "4 users"]),
    ("evaluate/k-zero", lambda c: recae.evaluate(c.pop, recae.holdout_split(c.data, 0.5), k=0), DataError, ["k must be a positive integer", "got 0"]),
    ("evaluate/k-past-memory", lambda c: recae.evaluate(c.pop, recae.holdout_split(c.data, 0.5), k=10**9), DataError,
     ["k=1000000000 for", "GiB top-k table", "the catalogue has 4 items"]),
    ("evaluate/no-metric", lambda c: recae.evaluate(c.pop, recae.holdout_split(c.data, 0.5), metrics=[]), DataError,
     ["at least one metric", "'ndcg'"]),
    ("evaluate/k-None", lambda c: recae.evaluate(c.pop, recae.holdout_split(c.data, 0.5), k=None), DataError, ["positive integer", "None"]),
    ("evaluate/metric", lambda c: recae.evaluate(c.pop, recae.holdout_split(c.data, 0.5), metrics=["auc"]), DataError, ["'ndcg'", "['auc']"]),
    ("evaluate/split-type", lambda c: recae.evaluate(c.pop, c.data), DataError, ["StrongSplit or HoldoutSplit", "Interactions"]),
    ("metrics/top-1d", lambda c: recae.metrics.ndcg_at_k(np.array([1, 2]), sp.csr_matrix((1, 3)), 2), DataError, ["2-D", "(2,)"]),
    # ------------------------------------------------------------ datasets
    ("load_movielens/variant", lambda c: load_movielens("2m", download=False), DataError, ["unknown MovieLens variant '2m'", "'100k'"]),
    ("load_movielens/absent", lambda c: load_movielens("100k", data_dir=c.dir, download=False),
     DatasetNotFoundError, ["u.data", "ml-100k"]),
    ("load_movielens/data_dir-int", lambda c: load_movielens("100k", data_dir=5, download=False), DataError, ["data_dir", "int"]),
    ("official_split/fold", lambda c: movielens_official_split(9, download=False), DataError, ["split 9", "'u1'..'u5'"]),
    ("synthetic/n_users-zero", lambda c: synthetic(0), DataError, ["n_users must be an integer in [1", "got 0"]),
    ("synthetic/n_items-float", lambda c: synthetic(10, 2.5), DataError, ["n_items must be an integer", "2.5"]),
    ("synthetic/min_per_user", lambda c: synthetic(10, 5, min_per_user=6), DataError, ["min_per_user", "[1, 5]", "6"]),
    # ------------------------------------------------------------ EASE numerical safety
    ("EASE/singular-gram", lambda c: recae.EASE(l2=0.0, dtype="float64").fit(sp.csr_matrix(np.array([[1.0, 1, 0], [1, 1, 1]]))),
     DataError, ["singular", "use a larger l2"]),
    ("EASE/gram-too-large", lambda c: recae.EASE(memory_budget_gb=1e-9).fit(c.data),
     MemoryBudgetError, ["needs about", "memory_budget_gb=1e-09", "raise the budget"]),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name,call,exc_type,fragments", CASES, ids=_ids(CASES))
def test_bad_input(ctx, name, call, exc_type, fragments):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConversionWarning)
        with pytest.raises(exc_type) as info:
            call(ctx)
    assert isinstance(info.value, recae.RecaeError), f"{type(info.value).__name__} is not a recae error"
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"message lacks {missing}: {message!r}"


# ------------------------------------------------------------------ predict (explicit-rating models)
@pytest.fixture(scope="module")
def autorec(ctx):
    return AutoRec(hidden=4, epochs=2, device="cpu", random_state=0).fit(ctx.data)


PREDICT_CASES = [
    ("predict/unfitted", lambda c, m: AutoRec().predict(1, 10), NotFittedError, ["not fitted"]),
    ("predict/length-mismatch", lambda c, m: m.predict([1, 2, 3], [10, 11]), ShapeError,
     ["same length", "got 3 and 2"]),
    ("predict/2d-ids", lambda c, m: m.predict([[1, 2]], [10]), DataError, ["1-D", "(1, 2)"]),
    ("fit/implicit-log", lambda c, m: AutoRec(epochs=1).fit(recae.Interactions.from_pandas(c.df)), DataError,
     ["explicit ratings", "has_ratings=False", "rating="]),
    ("recommend_new/bare-ids", lambda c, m: m.recommend_new([10, 11]), DataError, ["not bare item ids", "dict item→rating"]),
]


@pytest.mark.parametrize("name,call,exc_type,fragments", PREDICT_CASES, ids=_ids(PREDICT_CASES))
def test_bad_input_predict(ctx, autorec, name, call, exc_type, fragments):
    with pytest.raises(exc_type) as info:
        call(ctx, autorec)
    assert isinstance(info.value, recae.RecaeError)
    message = str(info.value)
    assert not [f for f in fragments if f not in message], message


# ------------------------------------------------------------------ the CLI: exit code 2 and one line on stderr
CLI_CASES = [
    ("cli/fit-missing-file", lambda c: ["fit", "--data", c.f.missing, "--out", c.f.out], ["no such file", "absent.csv"]),
    ("cli/fit-missing-column", lambda c: ["fit", "--data", c.f.misnamed, "--out", c.f.out],
     ["'user'", "['userId', 'movieId']", "Pass --user-col <column name>"]),
    ("cli/fit-malformed-line", lambda c: ["fit", "--data", c.f.too_many_fields, "--out", c.f.out], ["line 3"]),
    ("cli/fit-wrong-encoding", lambda c: ["fit", "--data", c.f.latin1, "--out", c.f.out], ["not valid utf-8", "latin-1"]),
    ("cli/fit-unknown-model", lambda c: ["fit", "--data", "synthetic", "--model", "svd", "--out", c.f.out],
     ["unknown model 'svd'", "'ease'"]),
    ("cli/fit-unknown-param", lambda c: ["fit", "--data", "synthetic", "--param", "lambda=3", "--out", c.f.out],
     ["'lambda'", "valid parameters"]),
    ("cli/recommend-pickle", lambda c: ["recommend", "--model-file", c.f.pickle, "--user", "1"], ["not a recae model file"]),
    ("cli/recommend-truncated", lambda c: ["recommend", "--model-file", c.f.truncated, "--user", "1"], ["not a recae model file"]),
    ("cli/recommend-newer-format", lambda c: ["recommend", "--model-file", c.f.newer, "--user", "1"], ["upgrade recae"]),
    ("cli/recommend-bad-checksum", lambda c: ["recommend", "--model-file", c.f.flipped, "--user", "1"], ["checksum"]),
    ("cli/recommend-unknown-user", lambda c: ["recommend", "--model-file", c.f.good, "--user", "99"], ["unknown user id", "[99]"]),
    ("cli/recommend-text-user", lambda c: ["recommend", "--model-file", c.f.good, "--user", "bob"], ["'bob'", "integers"]),
    ("cli/recommend-n-zero", lambda c: ["recommend", "--model-file", c.f.good, "--user", "1", "-n", "0"],
     ["n must be a positive integer", "got 0"]),
    ("cli/recommend-nothing", lambda c: ["recommend", "--model-file", c.f.good], ["--user", "--history"]),
]


@pytest.mark.parametrize("name,argv,fragments", CLI_CASES, ids=_ids(CLI_CASES))
def test_bad_input_cli(ctx, capsys, name, argv, fragments):
    code = cli.main(argv(ctx))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("recae: error: ") and "Traceback" not in err
    assert not [f for f in fragments if f not in err], err


# ------------------------------------------------------------------ accepted with a documented conversion
def test_non_csr_input_is_converted_with_a_warning(ctx):
    coo = sp.coo_matrix(ctx.data.matrix)
    with pytest.warns(ConversionWarning, match="COO matrix; converting to CSR"):
        inter = recae.Interactions.from_scipy(coo)
    np.testing.assert_array_equal(inter.matrix.toarray(), ctx.data.matrix.toarray())
    with pytest.warns(ConversionWarning, match="training data is a CSC matrix"):
        m = recae.EASE(l2=1.0, device="cpu").fit(sp.csc_matrix(ctx.data.matrix))
    np.testing.assert_allclose(m.B_.numpy(), ctx.ease.B_.numpy(), atol=1e-6)
    with pytest.warns(ConversionWarning, match="history is a COO"):
        ids, _ = ctx.ease.recommend_new(sp.coo_matrix(ctx.data.matrix[:1]), n=2)
    np.testing.assert_array_equal(ids, ctx.ease.recommend(1, n=2)[0][None, :])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # CSR input: no warning
        recae.Interactions.from_scipy(ctx.data.matrix)


def test_byte_order_mark_is_stripped(ctx):
    data = load_csv(ctx.f.bom)
    assert data.user_ids.tolist() == [1] and data.item_ids.tolist() == [10]


def test_n_larger_than_the_catalogue_is_capped(ctx):
    # user 1 saw items 10 and 11: of 4 items, 2 candidates remain, whatever n asks for
    ids, scores = ctx.ease.recommend(1, n=1000)
    assert sorted(ids.tolist()) == [12, 13] and scores.shape == (2,)
    ids2, scores2 = ctx.ease.recommend([1, 4], n=1000)
    assert ids2.shape == (2, 4)  # capped at the 4 items; rows pad with -1 / -inf past their candidates
    assert ids2[0, 2:].tolist() == [-1, -1] and np.all(scores2[0, 2:] == -np.inf)
    assert set(ids2[1, :3].tolist()) == {10, 11, 12} and ids2[1, 3] == -1  # user 4 saw item 13 only


def test_duplicate_rows_are_resolved_by_the_documented_rule(ctx):
    twice = pd.concat([ctx.df, ctx.df.iloc[:1].assign(rating=2.0, ts=99)])
    assert recae.Interactions.from_pandas(twice, rating="rating", timestamp="ts").matrix[0, 0] == 2.0  # latest wins
    assert recae.Interactions.from_pandas(twice).matrix[0, 0] == 1.0  # implicit: presence, once per pair
    assert recae.Interactions.from_pandas(twice, duplicates="sum").matrix[0, 0] == 2.0  # counts when asked


@pytest.mark.parametrize("log", [
    pd.DataFrame({"user": [1, 1, 1], "item": [1, 2, 3]}),  # a single user
    pd.DataFrame({"user": [1, 2, 3], "item": [5, 5, 5]}),  # a single item
    pd.DataFrame({"user": [1], "item": [1]}),  # one interaction
], ids=["one-user", "one-item", "one-entry"])
@pytest.mark.parametrize("factory", [
    lambda: recae.Popularity(device="cpu"), lambda: recae.EASE(l2=1.0, device="cpu"),
    lambda: recae.MultVAE(hidden_dims=(4,), latent_dim=2, epochs=1, device="cpu", random_state=0),
    lambda: recae.MultDAE(hidden_dims=(4,), epochs=1, device="cpu", random_state=0),
], ids=["Popularity", "EASE", "MultVAE", "MultDAE"])
def test_tiny_logs_fit_and_recommend(log, factory):
    data = recae.Interactions.from_pandas(log)
    model = factory().fit(data)
    user = data.user_ids[0]
    ids, scores = model.recommend(user, n=5)
    seen = set(log.loc[log.user == user, "item"])
    assert set(ids.tolist()) == set(data.item_ids.tolist()) - seen  # every unseen item, nothing else
    new_ids, new_scores = model.recommend_new([], n=5)
    assert sorted(new_ids.tolist()) == sorted(data.item_ids.tolist()) and np.all(np.isfinite(new_scores))


def test_zero_padded_ids_are_kept_as_written(tmp_path):
    # pandas alone reads 01 and 1 both as 1 (two users merged) and 00095 as 95
    path = tmp_path / "padded.csv"
    path.write_text("user,item\n01,00095\n1,95\n2,7\n1,7\n")
    data = load_csv(path)
    assert data.user_ids.tolist() == ["01", "1", "2"] and data.item_ids.tolist() == ["00095", "7", "95"]
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item\n1,95\n2,7\n")
    assert load_csv(plain).user_ids.dtype.kind == "i"  # ids without padding stay numbers, as before


def test_unknown_string_ids_are_shown_as_plain_values():
    from recae.data.ids import IdIndex

    index = IdIndex(np.array(["a", "b"], dtype=object), "item")
    with pytest.raises(recae.exceptions.UnknownIdError) as err:
        index.lookup(np.array([np.str_("50"), np.str_("51")], dtype=object))
    assert "e.g. ['50', '51']" in str(err.value) and "np.str_" not in str(err.value)


def test_each_id_is_looked_up_as_given(ctx):
    """numpy would make [10, 'x'] two strings: known ids must stay known beside an unknown one."""
    with pytest.warns(recae.DataWarning, match=r"left out 1 unknown item id\(s\) \['x'\]"):
        ids, scores = ctx.ease.recommend_new([10, "x"], n=3, unknown="ignore")
    expected = ctx.ease.recommend_new([10], n=3)
    assert ids.tolist() == expected[0].tolist() and np.allclose(scores, expected[1])
    assert ctx.ease.user_rows([1, "x"], unknown="ignore").tolist() == [0, -1]
    assert ctx.ease.recommend(1, exclude=[10, 12], n=2)[0].tolist() == [13]
    assert ctx.ease.recommend(1, exclude={12}, items={12, 13}, n=2)[0].tolist() == [13]  # sets: no order needed


def test_an_item_listed_twice_is_one_interaction(ctx):
    once, twice = ctx.ease.recommend_new([10, 11], n=2), ctx.ease.recommend_new([10, 10, 11], n=2)
    assert once[0].tolist() == twice[0].tolist() and np.allclose(once[1], twice[1])


def test_score_can_leave_unknown_items_out(ctx):
    history = recae.Interactions(sp.csr_matrix(np.ones((1, 2))), user_ids=[7], item_ids=[10, 99])
    got = ctx.ease.score(history, unknown="ignore")
    assert np.allclose(got, ctx.ease.score(sp.csr_matrix(np.array([[1.0, 0, 0, 0]]))))


def test_ids_written_differently_stay_apart(tmp_path):
    # pandas reads 1, 1.0, +1 and 1e0 all as 1, and 9007199254740993 through a float as ...992
    path = tmp_path / "ids.csv"
    path.write_text("user,item\n1,7\n1.0,7\n+1,7\n1e0,7\n9007199254740993,7\n9007199254740992,7\n")
    data = load_csv(path)
    assert sorted(data.user_ids.tolist()) == sorted(["1", "1.0", "+1", "1e0", "9007199254740993", "9007199254740992"])
    plain = tmp_path / "plain.csv"
    plain.write_text("user,item\n1, 7\n-2, 8\n 3,7\n")
    data = load_csv(plain)
    assert data.user_ids.tolist() == [-2, 1, 3] and data.item_ids.tolist() == [7, 8]  # spaces around are not the id


def test_dates_in_one_inferred_format_are_read_alike():
    frame = pd.DataFrame({"user": [1, 2, 3], "item": [2, 3, 4], "t": ["13/01/2020", "14/02/2020", "02/03/2020"]})
    data = recae.Interactions.from_pandas(frame, timestamp="t")
    assert pd.to_datetime(data.timestamps, unit="s").strftime("%Y-%m-%d").tolist() == [
        "2020-01-13", "2020-02-14", "2020-03-02"]  # day first throughout, as the first date shows


def test_a_compressed_tsv_is_read_as_tab_separated(tmp_path):
    import gzip

    from recae.datasets import load_log

    path = tmp_path / "ratings.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write("user\titem\n1\t10\n2\t20\n")
    data = load_log(path)
    assert data.user_ids.tolist() == [1, 2] and data.item_ids.tolist() == [10, 20]


def test_date_objects_are_timestamps():
    import datetime

    days = [datetime.date(2020, 1, d) for d in (1, 2, 3)]
    frames = [days, pd.Series([pd.Timestamp(d) for d in days], dtype=object),
              pd.Series(pd.to_datetime(days)).astype("category")]
    for column in frames:
        data = recae.Interactions.from_pandas(pd.DataFrame({"user": [1, 2, 3], "item": [2, 3, 4], "t": column}),
                                              timestamp="t")
        assert np.allclose(np.sort(data.timestamps), [1577836800.0, 1577923200.0, 1578009600.0])


def test_a_field_separator_must_be_a_non_empty_string_and_may_be_longer(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text("user::item\n1::10\n2::20\n")
    for sep in ("", 3):
        with pytest.raises(DataError, match=f"sep must be a non-empty string.*got {sep!r}"):
            recae.Interactions.from_csv(path, sep=sep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas warning about falling back to the python engine
        data = recae.Interactions.from_csv(path, sep="::")
    assert data.user_ids.tolist() == [1, 2] and data.item_ids.tolist() == [10, 20]
    with pytest.raises(DataError, match=r"The whole header is one column name.*pass sep='::'"):  # read with ","
        recae.Interactions.from_csv(path, user="user", item="item")


def test_dates_one_value_settles_read_in_that_order():
    import recae as r
    frame = pd.DataFrame({"user": [1, 1], "item": [2, 3], "t": ["05/03/2024", "03/13/2024"]})  # 13: month first
    assert r.Interactions.from_pandas(frame, timestamp="t").timestamps is not None
    frame = pd.DataFrame({"user": [1, 1], "item": [2, 3], "t": ["05/03/2024", "05/03/2024"]})  # the same reading
    with pytest.raises(r.DataError, match="no value has a day past 12"):
        r.Interactions.from_pandas(frame, timestamp="t")
