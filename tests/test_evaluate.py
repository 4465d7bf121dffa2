"""recae.evaluate on hand-built splits whose top-k lists are known, checked against hand arithmetic.

The model is Popularity fitted on a train log with designed, tie-free item counts, so every
user's ranking is "most popular first, minus what the protocol excludes".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import recae
from recae import HoldoutSplit, Interactions, Popularity, StrongSplit, evaluate
from recae.exceptions import DataError

L2 = math.log2


def log(users: list, items: list, rows: dict) -> Interactions:
    """An Interactions over exactly ``users`` × ``items`` (same order), ones where ``rows`` says."""
    r, c = [], []
    for u, its in rows.items():
        for it in its:
            r.append(users.index(u))
            c.append(items.index(it))
    m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(users), len(items)))
    return Interactions(m, np.array(users, dtype=object), np.array(items, dtype=object))


# ---------------------------------------------------------------------------------- strong split
ITEMS = ["i0", "i1", "i2", "i3", "i4", "i5"]
# train user tK has items i0..i(5-K): counts i0:6, i1:5, i2:4, i3:3, i4:2, i5:1 (no ties),
# so Popularity ranks i0 > i1 > i2 > i3 > i4 > i5 for everyone.
TRAIN_USERS = [f"t{k}" for k in range(6)]
TRAIN = {f"t{k}": ITEMS[: 6 - k] for k in range(6)}
TEST_USERS = ["h1", "h2", "h3", "h4"]
TEST_FOLD_IN = {"h1": ["i0"], "h2": ["i1", "i2"], "h3": ["i0", "i3"], "h4": ["i3"]}
TEST_TARGET = {"h1": ["i2", "i5"], "h2": ["i0"], "h4": ["i4"]}  # h3: empty target, not scored
VALID_USERS = ["v1", "v2"]
VALID_FOLD_IN = {"v1": ["i0"], "v2": ["i4"]}
VALID_TARGET = {"v1": ["i1"], "v2": ["i3", "i2"]}

# Rankings with the fold-in removed:
#   h1 (fold-in i0):      i1 i2 i3 i4 i5      target {i2, i5}: hits at ranks 2 and 5
#   h2 (fold-in i1, i2):  i0 i3 i4 i5         target {i0}:     hit at rank 1 (5th slot is padding)
#   h4 (fold-in i3):      i0 i1 i2 i4 i5      target {i4}:     hit at rank 4
D = {r: 1 / L2(r + 1) for r in range(1, 6)}  # discount of rank r
NDCG2 = {"h1": D[2] / (D[1] + D[2]),  # idcg over min(|T|=2, 2) = 2 hits; ≈ 0.386853
         "h2": 1.0,
         "h4": 0.0}
NDCG5 = {"h1": (D[2] + D[5]) / (D[1] + D[2]),  # ≈ 0.624052
         "h2": 1.0,
         "h4": D[4] / D[1]}  # 1/log2(5) ≈ 0.430677
RECALL2 = {"h1": 1 / 2, "h2": 1.0, "h4": 0.0}
RECALL5 = {"h1": 2 / 2, "h2": 1.0, "h4": 1.0}


def se(values) -> float:
    v = np.asarray(list(values), dtype=np.float64)
    return v.std(ddof=1) / math.sqrt(len(v))


@pytest.fixture(scope="module")
def strong() -> StrongSplit:
    return StrongSplit(
        train=log(TRAIN_USERS, ITEMS, TRAIN),
        valid_fold_in=log(VALID_USERS, ITEMS, VALID_FOLD_IN),
        valid_target=log(VALID_USERS, ITEMS, VALID_TARGET),
        test_fold_in=log(TEST_USERS, ITEMS, TEST_FOLD_IN),
        test_target=log(TEST_USERS, ITEMS, TEST_TARGET),
    )


@pytest.fixture(scope="module")
def pop(strong) -> recae.Popularity:
    model = recae.Popularity(device="cpu").fit(strong.train)
    np.testing.assert_array_equal(model.item_counts_.numpy(), [6, 5, 4, 3, 2, 1])
    return model


def test_strong_ndcg_recall_against_hand_values(strong, pop):
    table = evaluate(pop, strong, k=(2, 5), metrics=("ndcg", "recall"))
    assert list(table.index) == ["ndcg@2", "ndcg@5", "recall@2", "recall@5"]
    assert list(table.columns) == ["mean", "se", "n_users"]
    # ndcg@2 mean = (0.386853 + 1 + 0) / 3 ≈ 0.462284
    assert table.loc["ndcg@2", "mean"] == pytest.approx(sum(NDCG2.values()) / 3, abs=1e-12)
    assert table.loc["ndcg@2", "mean"] == pytest.approx(0.462284, abs=1e-6)
    # ndcg@5 mean = (0.624052 + 1 + 0.430677) / 3 ≈ 0.684910
    assert table.loc["ndcg@5", "mean"] == pytest.approx(sum(NDCG5.values()) / 3, abs=1e-12)
    assert table.loc["ndcg@5", "mean"] == pytest.approx(0.684910, abs=1e-6)
    assert table.loc["recall@2", "mean"] == pytest.approx(0.5, abs=1e-12)  # (0.5 + 1 + 0) / 3
    assert table.loc["recall@5", "mean"] == pytest.approx(1.0, abs=1e-12)
    # h3 has an empty target: three users are scored, not four
    assert table["n_users"].tolist() == [3, 3, 3, 3]


def test_se_is_std_ddof1_over_sqrt_n(strong, pop):
    table = evaluate(pop, strong, k=(2, 5), metrics=("ndcg", "recall"))
    assert table.loc["ndcg@2", "se"] == pytest.approx(se(NDCG2.values()), abs=1e-12)
    assert table.loc["ndcg@5", "se"] == pytest.approx(se(NDCG5.values()), abs=1e-12)
    # recall@2 values 0.5, 1, 0: mean 0.5, sample std 0.5, se = 0.5 / sqrt(3)
    assert table.loc["recall@2", "se"] == pytest.approx(0.5 / math.sqrt(3), abs=1e-12)
    assert table.loc["recall@5", "se"] == pytest.approx(0.0, abs=1e-12)  # all ones


def test_fold_in_items_are_excluded(strong, pop):
    # Were h1's fold-in item i0 ranked, h1's top 2 would be i0 i1: no hit, ndcg@2 = 0.
    # It is 0.386853, so i0 was left out and i2 moved up to rank 2.
    _, per_user = evaluate(pop, strong, k=2, metrics=("ndcg",), per_user=True)
    assert per_user.loc["h1", "ndcg@2"] == pytest.approx(NDCG2["h1"], abs=1e-12)
    assert per_user.loc["h1", "ndcg@2"] > 0.38


def test_per_user_values_indexed_by_raw_id(strong, pop):
    table, per_user = evaluate(pop, strong, k=(2, 5), metrics=("ndcg", "recall", "coverage"), per_user=True)
    assert list(per_user.index) == ["h1", "h2", "h4"]  # h3 (empty target) is absent
    assert list(per_user.columns) == ["ndcg@2", "ndcg@5", "recall@2", "recall@5"]  # coverage is not per user
    for user in ("h1", "h2", "h4"):
        assert per_user.loc[user, "ndcg@2"] == pytest.approx(NDCG2[user], abs=1e-12)
        assert per_user.loc[user, "ndcg@5"] == pytest.approx(NDCG5[user], abs=1e-12)
        assert per_user.loc[user, "recall@2"] == pytest.approx(RECALL2[user], abs=1e-12)
        assert per_user.loc[user, "recall@5"] == pytest.approx(RECALL5[user], abs=1e-12)
    np.testing.assert_allclose(per_user.mean().to_numpy(), table.loc[per_user.columns, "mean"].to_numpy())


def test_coverage(strong, pop):
    table = evaluate(pop, strong, k=(2, 5), metrics=("coverage",))
    # top 2 lists: h1 {i1, i2}, h2 {i0, i3}, h4 {i0, i1} → 4 of 6 items
    assert table.loc["coverage@2", "mean"] == pytest.approx(4 / 6, abs=1e-12)
    # top 5: h1 i1..i5 plus h2/h4 add i0 → all 6
    assert table.loc["coverage@5", "mean"] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(table.loc["coverage@2", "se"]) and table.loc["coverage@2", "n_users"] == 3


def test_valid_part(strong, pop):
    # v1 (fold-in i0): i1 i2 ...  target {i1}      → hit at rank 1: ndcg@2 = 1, recall@2 = 1
    # v2 (fold-in i4): i0 i1 ...  target {i3, i2}  → no hit in the top 2: 0 and 0
    table = evaluate(pop, strong, k=2, metrics=("ndcg", "recall"), part="valid")
    assert table.loc["ndcg@2", "mean"] == pytest.approx(0.5, abs=1e-12)
    assert table.loc["recall@2", "mean"] == pytest.approx(0.5, abs=1e-12)
    assert table.loc["ndcg@2", "n_users"] == 2
    # se of (1, 0): sample std 1/sqrt(2), over sqrt(2) → 0.5
    assert table.loc["ndcg@2", "se"] == pytest.approx(0.5, abs=1e-12)


def test_strong_protocol_uses_recommend_new(strong, pop, monkeypatch):
    calls = []
    original = pop.recommend_new

    def spy(history, *args, **kwargs):
        calls.append(list(history.user_ids))
        return original(history, *args, **kwargs)

    monkeypatch.setattr(pop, "recommend_new", spy)
    monkeypatch.setattr(pop, "recommend", lambda *a, **k: pytest.fail("strong protocol called recommend"))
    evaluate(pop, strong, k=2, metrics=("ndcg",))
    assert calls == [["h1", "h2", "h4"]]


def test_batch_size_does_not_change_results(strong, pop):
    a = evaluate(pop, strong, k=(2, 5), metrics=("ndcg", "recall"))
    b = evaluate(pop, strong, k=(2, 5), metrics=("ndcg", "recall"), batch_size=1)
    np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), equal_nan=True)
    with pytest.raises(DataError, match="batch_size"):
        evaluate(pop, strong, k=2, batch_size=0)


def test_single_metric_name_and_int_k(strong, pop):
    table = evaluate(pop, strong, k=2, metrics="ndcg")
    assert list(table.index) == ["ndcg@2"]


# ---------------------------------------------------------------------------------- holdout split
H_ITEMS = [100, 101, 102, 103, 104]
H_USERS = [1, 2, 3, 4]
# train counts: 100:4, 101:3, 102:2, 103:1, 104:0 → ranking 100 101 102 103 104
H_TRAIN = {1: [100, 101, 102, 103], 2: [100, 101, 102], 3: [100, 101], 4: [100]}
H_TEST = {1: [104], 2: [104], 3: [102]}  # user 4: empty test part, not scored
H_VALID = {4: [102]}


def int_log(rows: dict) -> Interactions:
    r = [H_USERS.index(u) for u, its in rows.items() for _ in its]
    c = [H_ITEMS.index(i) for its in rows.values() for i in its]
    m = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(H_USERS), len(H_ITEMS)))
    return Interactions(m, np.array(H_USERS), np.array(H_ITEMS))


@pytest.fixture(scope="module")
def holdout() -> HoldoutSplit:
    return HoldoutSplit(train=int_log(H_TRAIN), test=int_log(H_TEST), valid=int_log(H_VALID))


def test_holdout_excludes_train_items_and_uses_recommend(holdout, monkeypatch):
    model = recae.Popularity(device="cpu").fit(holdout.train)
    calls = []
    original = model.recommend

    def spy(user_ids, *args, **kwargs):
        calls.append(list(np.asarray(user_ids)))
        return original(user_ids, *args, **kwargs)

    monkeypatch.setattr(model, "recommend", spy)
    monkeypatch.setattr(model, "recommend_new", lambda *a, **k: pytest.fail("holdout protocol called recommend_new"))
    table, per_user = evaluate(model, holdout, k=2, metrics=("ndcg", "recall"), per_user=True)
    assert calls == [[1, 2, 3]]
    # user 1: only 104 is not in train → top 2 = [104, padding] → hit at rank 1: ndcg 1
    # user 2: candidates 103 (count 1), 104 (0) → [103, 104], target {104}: hit at rank 2 → 1/log2(3)
    # user 3: candidates 102, 103, 104 → [102, 103], target {102}: ndcg 1
    #         (were train items not excluded it would be [100, 101]: ndcg 0)
    expected = {1: 1.0, 2: 1 / L2(3), 3: 1.0}
    assert list(per_user.index) == [1, 2, 3]
    for user, value in expected.items():
        assert per_user.loc[user, "ndcg@2"] == pytest.approx(value, abs=1e-12)
    # mean = (1 + 0.630930 + 1) / 3 ≈ 0.876977
    assert table.loc["ndcg@2", "mean"] == pytest.approx(0.876977, abs=1e-6)
    assert table.loc["ndcg@2", "se"] == pytest.approx(se(expected.values()), abs=1e-12)
    assert table.loc["recall@2", "mean"] == pytest.approx(1.0, abs=1e-12)
    assert table.loc["ndcg@2", "n_users"] == 3


def test_holdout_valid_part(holdout):
    model = recae.Popularity(device="cpu").fit(holdout.train)
    # user 4 (train {100}): [101, 102], valid target {102} → hit at rank 2: 1/log2(3)
    table = evaluate(model, holdout, k=2, metrics=("ndcg",), part="valid")
    assert table.loc["ndcg@2", "mean"] == pytest.approx(1 / L2(3), abs=1e-12)
    assert table.loc["ndcg@2", "n_users"] == 1
    assert np.isnan(table.loc["ndcg@2", "se"])  # one user: no standard error
    no_valid = HoldoutSplit(holdout.train, holdout.test)
    with pytest.raises(DataError, match="valid"):
        evaluate(model, no_valid, k=2, part="valid")


# ---------------------------------------------------------------------------------- errors
def test_bad_metric_part_k_split(strong, pop):
    with pytest.raises(DataError, match="ndcg_at_100|metrics must come from") as err:
        evaluate(pop, strong, metrics=("ndcg", "ndcg_at_100"))
    assert "ndcg_at_100" in str(err.value)
    with pytest.raises(DataError, match="part must be 'test' or 'valid'; got 'train'"):
        evaluate(pop, strong, part="train")
    with pytest.raises(DataError, match="k"):
        evaluate(pop, strong, k=0)
    with pytest.raises(DataError, match="k"):
        evaluate(pop, strong, k=(20, "x"))
    with pytest.raises(DataError, match="StrongSplit or HoldoutSplit"):
        evaluate(pop, (strong.test_fold_in, strong.test_target))


def test_fold_in_and_target_must_list_the_same_users(strong, pop):
    swapped = StrongSplit(strong.train, strong.valid_fold_in, strong.valid_target,
                          strong.test_fold_in.take_users(np.array([1, 0, 2, 3])), strong.test_target)
    with pytest.raises(DataError, match="same users"):
        evaluate(pop, swapped, k=2)


def test_a_metric_named_twice_is_one_row_and_k_may_be_a_0d_array():
    data = recae.Interactions.from_pandas(pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": [1, 2, 1, 3, 2, 3]}))
    split = recae.holdout_split(data, 0.5, random_state=0)
    model = recae.Popularity().fit(split.train)
    table = recae.evaluate(model, split, k=np.array(2), metrics=["ndcg", "ndcg", "recall"])
    assert table.index.tolist() == ["ndcg@2", "recall@2"]
    assert table.equals(recae.evaluate(model, split, k=2, metrics=["ndcg", "recall"]))


def test_a_model_not_fitted_on_split_train_is_refused(strong, holdout):
    import scipy.sparse as sparse

    def stacked(*parts):  # the training users and the test users' whole histories in one log
        return Interactions(sparse.vstack([p.matrix for p in parts], format="csr"),
                            np.concatenate([p.user_ids for p in parts]), parts[0].item_ids)

    leaky = recae.Popularity(device="cpu").fit(stacked(strong.train, strong.test_fold_in))
    with pytest.raises(DataError, match="4 of the 4 test users are among the model's training users"):
        evaluate(leaky, strong)
    fewer = recae.Popularity(device="cpu").fit(strong.train.take_items(range(4)))
    with pytest.raises(DataError, match="fitted on 4 items, the split's training part has 6 .2 of them unknown"):
        evaluate(fewer, strong)
    whole = holdout.train.matrix + holdout.test.matrix
    seen_all = recae.Popularity(device="cpu").fit(Interactions(whole, holdout.train.user_ids, holdout.train.item_ids))
    with pytest.raises(DataError, match=f"{holdout.test.nnz} of the test part's {holdout.test.nnz} held-out entries"):
        evaluate(seen_all, holdout)
    with pytest.raises(recae.exceptions.NotFittedError, match="needs a fitted model"):
        evaluate(recae.Popularity(), strong)


def test_a_real_item_id_of_minus_one_is_not_taken_for_padding():
    # user 1's held-out item is the real item -1; popularity pads its list with -1 too
    log = pd.DataFrame({"user": [1, 1, 1, 2, 2, 3, 3], "item": [-1, 20, 30, -1, 20, 30, 20]})
    data = Interactions.from_pandas(log)
    frame = data.to_pandas()
    held = ((frame.user == 1) & (frame.item == -1)).to_numpy()
    split = HoldoutSplit(data.filter_entries(~held), data.filter_entries(held))
    table = evaluate(Popularity(device="cpu").fit(split.train), split, k=5, metrics=("recall", "ndcg", "map"))
    np.testing.assert_allclose(table["mean"].to_numpy(), 1.0)  # one hit of one, at rank 1
