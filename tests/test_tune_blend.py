"""tune's second Blend candidate: members that average several of their model's best trials."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("optuna")

from recae import DataError  # noqa: E402
from recae.bench.fitting import valid_ndcg  # noqa: E402
from recae.bench.search import Candidate, Search  # noqa: E402
from recae.models import Blend  # noqa: E402
from recae.tuning import TuneResult, tune  # noqa: E402
from recae.tuning.api import _averaged  # noqa: E402


# `planted` is synthetic, with ratings 1-5 by design: the warning about ratings has its own test
pytestmark = pytest.mark.filterwarnings("ignore:data holds ratings")


@pytest.fixture(scope="module")
def runs(planted):
    """The same seeded trial budget with one and with three trials per Blend member.

    With three, every kept trial joins its member (``_averaged`` is replaced), so the second
    Blend is there whatever the scores: its plumbing is tested here, the choice of trials below.
    """
    kw = dict(models=["ease", "multdae", "blend"], budget=6, max_epochs=30, refit=False)
    one = tune(planted, blend_trials=1, **kw)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("recae.tuning.api._averaged", lambda cands, planted_split: list(cands))
        three = tune(planted, blend_trials=3, **kw)
    return one, three


def test_search_keeps_each_neural_models_best_trials(planted_split):
    found = Search(planted_split, ["ease", "multdae"], n_trials=3, per_model=True, keep=2, max_epochs=10, patience=None).run()
    usable = sorted((r["valid_ndcg@100"] for r in found.records if r["model"] == "multdae"
                     and r["state"] != "pruned"), reverse=True)
    kept = found.kept["multdae"]
    assert len(usable) >= 2 and [c.valid for c in kept] == usable[:2]
    assert kept[0] is found.best["multdae"] and all(c.model.is_fitted for c in kept)
    assert len(found.kept["ease"]) == 1  # closed-form trials keep only their best


def test_bad_keep_is_named(planted_split):
    with pytest.raises(DataError, match="keep must be a positive number of trials per model; got 0"):
        Search(planted_split, ["ease"], n_trials=1, keep=0)


def test_an_averaged_member_takes_a_trial_only_if_the_average_rises(planted_split):
    cands = Search(planted_split, ["multdae"], n_trials=3, keep=3, max_epochs=10, patience=None).run().kept["multdae"]
    best = cands[0]
    twin = Candidate(best.valid, best.params, best.record, best.model)
    assert _averaged([best, twin], planted_split) == [best]  # a model averaged with itself ranks as it did: no rise
    chosen = _averaged(cands, planted_split)
    assert chosen[0] is best and len(chosen) == len({id(c) for c in chosen})
    if len(chosen) > 1:
        assert valid_ndcg(Blend.from_models([c.model for c in chosen]), planted_split) > best.valid


def test_more_trials_per_member_change_no_trial_and_add_a_blend_candidate(runs):
    one, three = runs
    trail = [(r["model"], r["params"], r["state"]) for r in one.trials]
    assert trail == [(r["model"], r["params"], r["state"]) for r in three.trials]
    assert sum(r["model"] == "blend" for r in one.leaderboard) == 1
    blends = [r for r in three.leaderboard if r["model"] == "blend"]
    assert len(blends) == 2
    averaged = next(r for r in blends if "settings" in r["params"])
    plain = next(r for r in blends if "settings" not in r["params"])
    before = next(r for r in one.leaderboard if r["model"] == "blend")
    untimed = lambda row: {k: v for k, v in row.items() if k != "seconds"}  # noqa: E731
    assert repr(untimed(plain)) == repr(untimed(before))  # the first candidate is unchanged (repr: NaN == NaN)
    members, weights = averaged["params"]["members"], averaged["params"]["weights"]
    assert members.count("multdae") >= 2 and len(weights) == len(members) == len(averaged["params"]["settings"])
    dae = [w for m, w in zip(members, weights) if m == "multdae"]
    assert max(dae) - min(dae) < 1e-4 and sum(weights) == pytest.approx(1.0, abs=1e-3)  # one weight, planted_split equally
    assert three.valid == max(r["valid_ndcg@100"] for r in three.leaderboard)


def test_the_averaged_blend_refits_every_setting(runs, planted):
    averaged = next(r for r in runs[1].leaderboard if "settings" in r.get("params", {}))
    again = TuneResult(model=None, name="blend", params=averaged["params"], valid=averaged["valid_ndcg@100"],
                       leaderboard=runs[1].leaderboard).refit(planted)
    assert len(again.members_) == len(averaged["params"]["members"]) and len(again.user_ids_) == planted.n_users
    for member, setting in zip(again.members_, averaged["params"]["settings"]):
        assert {k: getattr(member, k) for k in setting} == setting  # each trial's own setting and epochs
    np.testing.assert_allclose(again.weights_, np.array(averaged["params"]["weights"]) / sum(averaged["params"]["weights"]))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_blend_trials_are_named(planted, bad):
    with pytest.raises(DataError, match="blend_trials must be a positive number"):
        tune(planted, models=["ease"], budget=1, blend_trials=bad)
