"""Interactions built from a sparse matrix: any format, timestamps kept on their entries, bad values named."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from recae import Popularity
from recae.data import Interactions
from recae.data.splits import temporal_split
from recae.exceptions import ConversionWarning, DataError, ShapeError, UnknownIdError

USERS, ITEMS, TIMES = np.array([1, 0, 1, 0]), np.array([0, 1, 2, 2]), np.array([10.0, 20.0, 30.0, 40.0])
TRUTH = {(1, 0): 10.0, (0, 1): 20.0, (1, 2): 30.0, (0, 2): 40.0}


def _pairs(data: Interactions) -> dict:
    df = data.to_pandas()
    return {(int(u), int(i)): float(t) for u, i, t in zip(df["user"], df["item"], df["timestamp"])}


@pytest.mark.parametrize("fmt", ["coo", "csc", "csr_unsorted"])
def test_timestamps_stay_with_their_entries_in_any_format(fmt):
    coo = sp.coo_matrix((np.ones(4), (USERS, ITEMS)), shape=(2, 3))
    if fmt == "coo":
        matrix, times = coo, TIMES
    elif fmt == "csc":  # the timestamps follow the CSC's own storage order
        matrix = sp.csc_matrix((np.ones(4), (USERS, ITEMS)), shape=(2, 3))
        back = matrix.tocoo()
        times = np.array([TRUTH[int(u), int(i)] for u, i in zip(back.row, back.col)])
    else:  # CSR rows with their columns out of order
        matrix = sp.csr_matrix((np.ones(4), np.array([2, 1, 2, 0]), np.array([0, 2, 4])), shape=(2, 3))
        times = np.array([40.0, 20.0, 30.0, 10.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConversionWarning)
        data = Interactions(matrix, timestamps=times)
    assert data.matrix.has_canonical_format
    assert _pairs(data) == TRUTH
    test = temporal_split(data, k=1).test
    assert _pairs(test) == {(0, 2): 40.0, (1, 2): 30.0}  # each user's latest entry


def test_canonical_csr_keeps_its_timestamps_in_place():
    matrix = sp.csr_matrix((np.ones(4), np.array([1, 2, 0, 2]), np.array([0, 2, 4])), shape=(2, 3))
    data = Interactions(matrix, timestamps=[20.0, 40.0, 10.0, 30.0])
    assert _pairs(data) == TRUTH


def test_repeated_entries_with_timestamps_are_refused_and_without_are_summed():
    matrix = sp.csr_matrix((np.ones(5), np.array([0, 0, 1, 1, 2]), np.array([0, 3, 5])), shape=(2, 3))
    with pytest.raises(DataError, match=r"stores 1 \(row, column\) pair\(s\) more than once \(first at row 0, column 0\)"):
        Interactions(matrix, timestamps=[1, 2, 3, 1, 2])
    data = Interactions(matrix)
    assert data.nnz == 4 and data.matrix[0, 0] == 2.0


def test_timestamps_need_a_format_with_a_storage_order():
    with pytest.raises(DataError, match="CSR, CSC or COO matrix; got a LIL matrix"):
        Interactions(sp.lil_matrix(np.array([[1.0, 1.0]])), timestamps=[1, 2])
    with pytest.raises(ShapeError, match=r"expected \(2,\), one per stored entry"):
        Interactions(sp.csr_matrix(np.array([[1.0, 1.0]])), timestamps=[1, 2, 3])


@pytest.mark.parametrize("times", [None, [1.0, 2.0]])
def test_bad_values_are_named(times):
    with pytest.raises(DataError, match="real numbers; got dtype complex128"):
        Interactions(sp.csr_matrix(np.array([[1 + 1j, 1.0]])), timestamps=times)
    with pytest.raises(DataError, match=r"beyond float32's range .*first 1e\+300 at row 0, column 1"):
        Interactions(sp.csr_matrix(np.array([[1.0, 1e300]])), timestamps=times)
    with pytest.raises(DataError, match="1 NaN or infinite value.*first at row 0, column 1"):
        Interactions(sp.csr_matrix(np.array([[1.0, np.nan]])), timestamps=times)


@pytest.mark.parametrize("users, items, kind", [
    (["u1", "u2"], None, "strings"),
    (np.array(["u1", "u2"]), np.array(["a", "b", "c"]), "strings"),
    (np.array([1, 2], dtype=object), np.array([10, 20, 30], dtype=object), "integers"),
])
def test_ids_become_integers_or_object_strings_whatever_array_holds_them(users, items, kind):
    data = Interactions(sp.csr_matrix(np.eye(2, 3)), user_ids=users, item_ids=items)
    assert data.user_ids.dtype == (object if kind == "strings" else np.int64)
    model = Popularity(device="cpu").fit(data)
    unknown = 5 if kind == "strings" else "u5"
    with pytest.raises(UnknownIdError, match=f"known user ids are {kind} like"):
        model.recommend(unknown)
    ids, _ = model.recommend(data.user_ids, n=3)
    assert ids[0, -1] == (None if items is not None and kind == "strings" else -1)  # the documented padding
