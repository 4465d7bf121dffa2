"""Blend groups (members that share one weight) and the weight search's extra starting point."""

from __future__ import annotations

import numpy as np
import pytest

import recae
from recae.exceptions import DataError
from recae.models.inputs import validation_pair
from recae.models.validation import validation_score

from test_conformance import checkerboard

SMALL = dict(hidden_dims=(16,), epochs=4, batch_size=10, lr=3e-3)


@pytest.fixture(scope="module")
def board_split():
    return recae.strong_generalization_split(checkerboard(60), n_heldout=10, random_state=0)


@pytest.fixture(scope="module")
def members(board_split):
    """EASE and two MultDAE settings: the second pair is what a group ties together."""
    return [recae.EASE(l2=5.0).fit(board_split.train),
            recae.MultDAE(**SMALL, random_state=0).fit(board_split.train),
            recae.MultDAE(**dict(SMALL, hidden_dims=(24,)), random_state=1).fit(board_split.train)]


def score(members, weights, board_split) -> float:
    """Validation NDCG@100 of the members with these weights fixed."""
    fixed = recae.Blend.from_models(members, weights=list(weights))
    return validation_score(fixed, validation_pair(board_split, fixed.item_ids_), "ndcg@100")


def test_members_of_one_group_share_its_weight_equally(members, board_split):
    blend = recae.Blend.from_models(members, valid=board_split, groups=[0, 1, 1], grid_step=0.1, bags=0)
    assert blend.weights_[1] == pytest.approx(blend.weights_[2]) and blend.weights_.sum() == pytest.approx(1.0)
    # one search over two groups on the 0.1 grid: the best of its 11 points, scored with fixed weights
    grid = [np.array([a, (1 - a) / 2, (1 - a) / 2]) for a in np.linspace(0, 1, 11)]
    scores = [score(members, w, board_split) for w in grid]
    assert blend.valid_score_ == pytest.approx(max(scores), abs=1e-12)
    np.testing.assert_allclose(blend.weights_, grid[int(np.argmax(scores))], atol=1e-12)


def test_a_group_per_member_is_no_grouping(members, board_split):
    plain = recae.Blend.from_models(members, valid=board_split, grid_step=0.1)
    single = recae.Blend.from_models(members, valid=board_split, grid_step=0.1, groups=[5, 3, 9])
    np.testing.assert_array_equal(single.weights_, plain.weights_)


def test_groups_travel_in_the_model_file(members, board_split, tmp_path):
    blend = recae.Blend.from_models(members, valid=board_split, groups=[0, 1, 1], bags=2)
    blend.save(tmp_path / "g.recae")
    loaded = recae.load(tmp_path / "g.recae")
    assert loaded.groups == [0, 1, 1]
    np.testing.assert_allclose(loaded.weights_, blend.weights_)


@pytest.mark.parametrize("groups", [[0, 1], [0, 1, "b"], [0, 1, True]])
def test_bad_groups_name_the_expected_and_the_actual(members, board_split, groups):
    with pytest.raises(DataError, match=r"one integer label per member \(3 members\); got"):
        recae.Blend.from_models(members, valid=board_split, groups=groups)


@pytest.mark.parametrize("groups", [None, [0, 1, 2, 2]])  # three groups: the grid; four: coordinate ascent
def test_the_search_never_ends_under_its_extra_start(members, board_split, groups):
    four = [*members, recae.EASE(l2=50.0).fit(board_split.train)] if groups is None else [*members, members[2]]
    start = [0.2, 0.5, 0.3] if groups else [0.1, 0.4, 0.3, 0.2]
    expand = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0.5, 0.5]]) if groups else np.eye(4)
    # a step of 1 leaves no start (the grid holds only the corners), so without bags the result is the
    # best of the starts: the corners, the extra start and, for coordinate ascent, equal weights
    blend = recae.Blend.from_models(four, valid=board_split, grid_step=1.0, bags=0, start=start, groups=groups)
    starts = [*np.eye(len(start)), np.array(start)] + ([np.full(4, 0.25)] if groups is None else [])
    best = max(score(four, w @ expand, board_split) for w in starts)
    assert blend.valid_score_ >= score(four, np.array(start) @ expand, board_split) - 1e-12
    assert blend.valid_score_ == pytest.approx(best, abs=1e-12)


def test_a_start_is_one_weight_per_group(members, board_split):
    with pytest.raises(DataError, match=r"start must be 2 finite non-negative weights \(one per group\).*got \[0.5, 0.5, 0.0\]"):
        recae.Blend.from_models(members, valid=board_split, groups=[0, 1, 1], start=[0.5, 0.5, 0.0])


def test_from_models_refuses_members_of_other_entries_nested_blends_and_odd_values(members, board_split):
    """A member fitted on the same ids but other entries (e.g. with held-out ones) would hide a leak from
    evaluate, which reads the first member's entries; found by a QA pass, as were the others here."""
    train = board_split.train
    same = recae.Interactions(train.matrix.copy(), train.user_ids, train.item_ids)
    leaky = train.matrix.tolil()
    leaky[0, int(np.flatnonzero(train.matrix[0].toarray().ravel() == 0)[0])] = 1.0  # one entry more
    other = recae.EASE(l2=5.0).fit(recae.Interactions(leaky.tocsr(), train.user_ids, train.item_ids))
    recae.Blend.from_models([members[0], recae.EASE(l2=9.0).fit(same)])  # the same entries pass
    with pytest.raises(DataError, match=r"EASE was fitted on other entries than EASE \(the same users and items"):
        recae.Blend.from_models([members[0], other])
    with pytest.raises(DataError, match=r"from_models takes fitted recae models \(not Blends\); got str"):
        recae.Blend.from_models([members[0], "x"])
    inner = recae.Blend.from_models(members[:2])
    with pytest.raises(DataError, match="from_models takes fitted recae models"):
        recae.Blend.from_models([members[0], inner])
    with pytest.raises(DataError, match="a Blend cannot be a member of a Blend"):
        recae.Blend(members=[recae.Blend(members=[("EASE", {})]), recae.Popularity()]).fit(train)
    with pytest.raises(DataError, match=r"start must be 2 finite non-negative weights.*got \[nan, 1.0\]"):
        recae.Blend.from_models(members[:2], valid=board_split, start=[np.nan, 1.0])
    assert recae.Blend.from_models(members[:2], valid=board_split, grid_step=np.float32(0.25)).is_fitted
