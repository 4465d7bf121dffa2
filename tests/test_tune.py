"""recae tune: budgets, the spaces as Optuna distributions, the search, pruning, errors, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("optuna")

import recae  # noqa: E402
from recae import DataError  # noqa: E402
from recae.bench import SPACES  # noqa: E402
from recae.bench.search import Search  # noqa: E402
from recae.bench.spaces import check_grid, distributions, start  # noqa: E402
from recae.cli import main  # noqa: E402
from recae.datasets import synthetic  # noqa: E402
from recae.tuning import parse_budget, tune  # noqa: E402


# `planted` is synthetic, with ratings 1-5 by design: the warning about ratings has its own test
pytestmark = pytest.mark.filterwarnings("ignore:data holds ratings")


def trail(records):
    return [(r["model"], r["params"], r["state"], round(r["valid_ndcg@100"], 10)) for r in records]


@pytest.mark.parametrize("text, seconds", [("20m", 1200), ("90s", 90), ("1h30m", 5400), ("2.5 min", 150)])
def test_time_budgets(text, seconds):
    assert parse_budget(text) == (seconds, None)


def test_trial_budget():
    assert parse_budget(7) == (None, 7)


@pytest.mark.parametrize("bad", ["20", "fast", "0s", 0, -3, True, 2.5, "20m and more"])
def test_bad_budgets_say_what_to_give(bad):
    with pytest.raises(DataError, match="budget"):
        parse_budget(bad)


def test_distributions_come_from_the_same_grids():
    for name, space in SPACES.items():
        dists = distributions(name)
        assert sorted(dists) == sorted(space.grid), name
        first = start(name)
        for key, dist in dists.items():
            for v in [*space.grid[key], first[key]]:  # every grid point and the default lie inside
                if hasattr(dist, "choices"):
                    assert v in dist.choices, (name, key, v)
                else:
                    assert dist.low <= v <= dist.high, (name, key, v)
    assert distributions("ease")["l2"].log  # 50 .. 2000: a log scale
    assert hasattr(distributions("multdae")["weight_decay"], "choices")  # 0 beside 1e-5: categorical


@pytest.mark.parametrize("grid, match", [({"l2": ["big"]}, "type of its default"), ({"l2": 5}, "non-empty list"),
                                         ({"l2": []}, "non-empty list"), ({"lambda": [1.0]}, "no parameter 'lambda'")])
def test_bad_search_space_values_are_named(grid, match):
    with pytest.raises(DataError, match=match):
        check_grid("ease", grid)


def test_unknown_model_is_named(planted):
    with pytest.raises(DataError, match="'svd'"):
        tune(planted, models=["ease", "svd"], budget=2)


def test_a_space_for_a_model_not_searched_is_refused(planted):
    with pytest.raises(DataError, match="not among the models"):
        tune(planted, models=["ease"], spaces={"als": {"factors": [8]}}, budget=2)


def test_budget_too_small_for_one_trial(planted):
    with pytest.raises(DataError, match="too small for one trial"):
        tune(planted, models=["als"], budget="0.001s")


def test_tune_picks_refits_and_is_reproducible(planted):
    kw = dict(models=["popularity", "ease", "edlae"], budget=7, random_state=1)
    a, b = tune(planted, **kw), tune(planted, **kw)
    assert trail(a.trials) == trail(b.trials)  # a seed gives the same trials
    assert len(a.trials) == 7 and {r["model"] for r in a.trials} == {"popularity", "ease", "edlae"}
    assert a.trials[0]["params"] == start("popularity") and a.trials[1]["params"] == start("ease")  # defaults first
    assert a.valid == max(r["valid_ndcg@100"] for r in a.leaderboard) and a.name == a.leaderboard[0]["model"]
    assert a.valid >= max(r["valid_ndcg@100"] for r in a.trials if r["state"] == "complete")
    assert len(a.model.user_ids_) == planted.n_users  # refitted on every user, not only the training ones
    ids, _ = a.model.recommend(planted.user_ids[0], n=5)
    assert len(ids) == 5
    c = tune(planted, **{**kw, "random_state": 2})
    assert trail(c.trials) != trail(a.trials)


def test_no_refit_keeps_the_trial_model(planted, planted_split):
    r = tune(planted, models=["ease"], budget=2, split=planted_split, refit=False)
    assert len(r.model.user_ids_) == planted_split.train.n_users < planted.n_users
    assert "training users" in r.info["refit_on"]


def test_a_no_refit_model_holds_the_settings_a_refit_would_use(planted, planted_split):
    """The epochs validation stopped at, not the search's cap: a saved model's settings fit again alike."""
    r = tune(planted, models=["multdae"], budget=1, split=planted_split, refit=False, max_epochs=30)
    best_epoch = r.leaderboard[0]["best_epoch"]
    assert 1 <= best_epoch == r.model.best_epoch_ and r.model.get_params()["epochs"] == best_epoch
    assert r.model.get_params() == r.estimator().get_params()


def test_hopeless_neural_trials_are_pruned_per_epoch(planted_split):
    # lr 1e-7 learns nothing: pruned against the default's curve (lr 1e-3) after the warm-up epochs
    search = Search(planted_split, ["multdae"], n_trials=4, grids={"multdae": {"lr": [1e-7]}}, max_epochs=8,
                    patience=None)
    records = search.run().records
    slow = [r for r in records if r["params"]["lr"] == 1e-7]
    assert slow and all(r["state"] == "pruned" for r in slow)
    assert records[0]["params"]["lr"] == 1e-3 and records[0]["state"] == "complete"


def test_a_neural_trial_stops_at_its_time_share_and_keeps_its_best_epoch(planted_split):
    search = Search(planted_split, ["multdae"], seconds=0.5, per_model=True,
                    fixed={"multdae": {"epochs": 100_000, "patience": None}})
    found = search.run()
    rec = found.records[0]
    assert 1 <= rec["stopped_at_epoch"] < 100_000 and 1 <= rec["best_epoch"] <= rec["stopped_at_epoch"]
    assert rec["epochs"] == rec["stopped_at_epoch"]
    assert found.best["multdae"].model.is_fitted


def test_default_trials_share_what_is_left_among_the_models_still_waiting(planted_split, monkeypatch):
    """A fast default leaves its unused share to the slow defaults after it (never over half of what is left)."""
    import types

    import recae.bench.search as search_module

    clock, caps = [0.0], []
    monkeypatch.setattr(search_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def fake_trial(self, name, order, cap, t0):  # a fit that takes a fixed time, or its whole cap
        caps.append((name, cap))
        took = 9.0 if name in ("ease", "edlae") else cap
        clock[0] += took
        record = {"model": name, "trial": order, "order": order, "params": {"n": order}, "valid_ndcg@100": 0.1,
                  "state": "complete", "seconds": took, "elapsed": clock[0] - t0}
        return record, object()

    monkeypatch.setattr(Search, "_trial", fake_trial)
    Search(planted_split, ["ease", "edlae", "multdae", "multvae"], seconds=100, race=None, patience=None).run()
    assert [n for n, _ in caps[:4]] == ["ease", "edlae", "multdae", "multvae"]
    # 100 s among 4; 91 among the 3 still waiting; 82 among 2; the last gets half of the 41 left
    assert [round(c, 9) for _, c in caps[:4]] == [25.0, round(91 / 3, 9), 41.0, 20.5]
    # then equal shares: 20.5 s left, 5.1 s each is under ease's and edlae's 9 s fits, so they leave
    assert caps[4] == ("multvae", (100 - 9 - 9 - 41 - 20.5) / 2)


def test_a_neural_model_leaves_when_its_time_left_is_under_a_few_epochs(planted_split, monkeypatch):
    """No neural trial starts with time for fewer than MIN_EPOCHS epochs at its model's pace."""
    import types

    import recae.bench.search as search_module

    clock, calls = [0.0], []
    monkeypatch.setattr(search_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def fake_trial(self, name, order, cap, t0):  # ease: 1 s fits; multdae: 2 s epochs, at most 15 of them
        took = 1.0 if name == "ease" else min(cap, 30.0)
        calls.append((name, cap))
        clock[0] += took
        record = {"model": name, "trial": order, "order": order, "params": {"n": order}, "valid_ndcg@100": 0.1,
                  "state": "complete", "seconds": took, "elapsed": clock[0] - t0}
        if name == "multdae":
            record.update(epochs=max(int(took // 2), 1), best_epoch=max(int(took // 2), 1))
            record["state"] = "complete" if took == 30.0 else "stopped"
        return record, object()

    monkeypatch.setattr(Search, "_trial", fake_trial)
    found = Search(planted_split, ["ease", "multdae"], seconds=120, race=None, patience=None, lead=1.0).run()
    neural = [cap for name, cap in calls if name == "multdae"]
    # the default (half of 119 s left); after 30 more ease fits, half of the 59 s left; then ease's turns
    # leave a few seconds, under the 10 s that 5 epochs take: it leaves instead of running a trial of 1 epoch
    assert neural == [59.5, 29.5]
    assert re.fullmatch(r"5 epochs take 10.0 s at its fastest pace, over the \d\.\d s left to it", found.left["multdae"])
    assert calls[-1][0] == "ease" and sum(1 for name, _ in calls if name == "ease") > len(neural)


def test_after_the_defaults_the_time_goes_to_the_leaders(planted_split, monkeypatch):
    """Successive halving across models: a model's time share halves with each model ahead of it."""
    clock, calls = _two_second_trials(monkeypatch, {"multvae": 0.4, "multdae": 0.3, "edlae": 0.2, "ease": 0.1})
    models = ["ease", "edlae", "multdae", "multvae"]
    Search(planted_split, models, seconds=200, race=None, patience=None).run()
    assert [n for n, _, _ in calls[:4]] == models  # the defaults first, in order
    used = _seconds_per_model(calls)
    weight = {"multvae": 1.0, "multdae": 0.5, "edlae": 0.25, "ease": 0.125}
    # each model's time over its weight is within one fit of the leader's
    for m in models:
        assert abs(used[m] / weight[m] - used["multvae"]) <= 2.0 / weight[m] + 1e-9, (m, used)
    assert used["multvae"] > 90 and used["ease"] < 16
    # a trial's cap is its weight's part of the time left
    name, cap, _ = calls[4]
    left = 200 - sum(t for _, _, t in calls[:4])
    assert cap == pytest.approx(left * weight[name] / sum(weight.values()))

    calls.clear()
    clock[0] = 0.0
    Search(planted_split, models, seconds=200, race=None, patience=None, lead=1.0).run()  # equal shares
    equal = _seconds_per_model(calls)
    assert max(equal.values()) - min(equal.values()) <= 4.0, equal  # the last seconds: fits that no longer fit
    with pytest.raises(DataError, match="lead must be a number in"):
        Search(planted_split, models, seconds=10, lead=0)


def test_storage_of_another_study_or_other_data_is_refused(tmp_path, planted):
    db = tmp_path / "tune.db"
    tune(planted, models=["ease"], budget=2, storage=db, study_name="a")
    assert db.read_bytes()[:15] == b"SQLite format 3"
    with pytest.raises(DataError, match="holds the studies \\['a'\\]"):
        tune(planted, models=["ease"], budget=2, storage=db, study_name="b")
    other = synthetic(n_users=300, n_items=100, random_state=4)
    with pytest.raises(DataError, match="other data"):
        tune(other, models=["ease"], budget=2, storage=db, study_name="a")
    (tmp_path / "notes.db").write_text("not a database")
    with pytest.raises(DataError, match="not an SQLite database"):
        tune(planted, models=["ease"], budget=2, storage=tmp_path / "notes.db")


KILLED = """
import sys, time
import recae.bench.search as search
from recae.datasets import synthetic
from recae.tuning import tune
fit, calls = search.fit_model, []
def fit_then_hang(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # ease's default is stored; edlae's default is running when the process is killed
        open(sys.argv[2], "w").write("1")
        time.sleep(600)
    return fit(*args, **kwargs)
search.fit_model = fit_then_hang
tune(synthetic(n_users=400, n_items=120, random_state=3), models=["ease", "edlae"], budget=8, storage=sys.argv[1])
"""


def test_a_killed_search_resumes_with_no_trial_lost(tmp_path, planted):
    import time

    db, marks = tmp_path / "tune.db", tmp_path / "marks"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(db), str(marks)])
    try:
        while not (marks.exists() and marks.read_text() == "1"):
            assert proc.poll() is None, "the search process ended before it was killed"
            time.sleep(0.2)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    import optuna

    stored = optuna.load_study(study_name="recae-tune/ease", storage=f"sqlite:///{db}").get_trials()
    stored += optuna.load_study(study_name="recae-tune/edlae", storage=f"sqlite:///{db}").get_trials()
    assert sorted(t.state.name for t in stored) == ["COMPLETE", "RUNNING"]  # killed mid-trial
    resumed = tune(planted, models=["ease", "edlae"], budget=8, storage=db)
    whole = tune(planted, models=["ease", "edlae"], budget=8)
    assert trail(resumed.trials) == trail(whole.trials)
    assert resumed.name == whole.name and resumed.params == whole.params


def test_import_recae_stays_free_of_optuna():
    code = "import sys, recae; assert 'optuna' not in sys.modules; assert callable(recae.tune); print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
    assert recae.tune is tune


def test_cli_tune_saves_the_model_and_the_report(tmp_path, capsys, planted):
    out, log = tmp_path / "best.recae", tmp_path / "log.csv"
    planted.to_pandas().to_csv(log, index=False)
    args = ["tune", "--data", str(log), "--budget", "3", "--models", "popularity", "ease", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "[  1]" in printed and "best" in printed and "trials left" in printed  # the progress display
    model = recae.load(out)
    assert model.is_fitted
    report = json.loads((tmp_path / "best_tune.json").read_text())
    # the figures behind the choice travel in the file (GET /model shows them)
    assert model.quality_["valid_ndcg@100"] == pytest.approx(report["chosen"]["valid_ndcg@100"])
    assert 0 < model.quality_["test_ndcg@100"] <= 1 and "recae tune (3" in model.quality_["source"]
    assert len(report["trials"]) == 3 and report["chosen"]["model"] in ("popularity", "ease")
    assert (tmp_path / "best_tune.md").read_text().count("| ease |") >= 1
    assert main(args + ["--quiet", "--report-dir", str(tmp_path / "r")]) == 0
    assert "[  1]" not in capsys.readouterr().out


def test_cli_bad_input_is_one_error_line(tmp_path, capsys):
    assert main(["tune", "--data", "synthetic", "--budget", "soon", "--out", str(tmp_path / "m.recae")]) == 2
    assert "budget must be a time" in capsys.readouterr().err
    assert main(["tune", "--data", "synthetic", "--space", '{"ease": {"l2": "big"}}', "--models", "ease",
                 "--out", str(tmp_path / "m.recae")]) == 2
    assert "non-empty list" in capsys.readouterr().err


def test_the_blend_of_the_best_members_is_a_candidate_and_refits_on_all_users(planted):
    r = tune(planted, models=["ease", "multdae", "blend"], budget=3, max_epochs=40)
    row = next(x for x in r.leaderboard if x["model"] == "blend")
    assert row["params"]["members"] == ["ease", "multdae"] and sum(row["params"]["weights"]) == pytest.approx(1.0)
    assert r.name == "blend"  # here the blend wins validation by 0.014 (the run is seeded)
    assert type(r.model).__name__ == "Blend" and len(r.model.user_ids_) == planted.n_users
    dae = r.model.members_[1]
    best_epoch = next(x for x in r.leaderboard if x["model"] == "multdae")["best_epoch"]
    assert dae.epochs == best_epoch and dae.history_[-1]["epoch"] == best_epoch  # refitted for its best epochs


def test_a_result_rebuilt_from_its_report_refits_the_saved_model(planted, tmp_path):
    from recae.tuning import TuneResult, write

    r = tune(planted, models=["ease", "multdae", "blend"], budget=3, max_epochs=40)
    write(r, tmp_path, "t", command="test")
    report = json.loads((tmp_path / "t.json").read_text())
    again = TuneResult(model=None, name=report["chosen"]["model"], params=report["chosen"]["params"],
                       valid=report["chosen"]["valid_ndcg@100"], leaderboard=report["leaderboard"]).refit(planted)
    users = planted.user_ids[:20]
    (ids_a, s_a), (ids_b, s_b) = r.model.recommend(users, n=10), again.recommend(users, n=10)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_allclose(s_a, s_b, rtol=1e-5)
    half = planted.take_users(np.arange(planted.n_users // 2))  # refits on other data: only the setting travels
    other = r.refit(half)
    assert len(other.user_ids_) == half.n_users and other.members_[1].epochs == r.model.members_[1].epochs

def _two_second_trials(monkeypatch, score):
    """A fake clock and trials that take 2 s each (or their cap, if less) and score ``score[model]``."""
    import types

    import recae.bench.search as search_module

    clock, calls = [0.0], []
    monkeypatch.setattr(search_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def fake_trial(self, name, order, cap, t0):  # every fit takes 2 s (or its cap, if less)
        took = min(2.0, cap)
        calls.append((name, cap, took))
        clock[0] += took
        record = {"model": name, "trial": order, "order": order, "params": {"n": order}, "valid_ndcg@100": score[name],
                  "state": "complete", "seconds": took, "elapsed": clock[0] - t0}
        return record, object()

    monkeypatch.setattr(Search, "_trial", fake_trial)
    return clock, calls


def _seconds_per_model(calls):
    used = Counter()
    for name, _, took in calls:
        used[name] += took
    return used


def test_with_the_blend_its_members_share_the_best_members_rank(planted_split, monkeypatch):
    """blend=True: members rank where their best one does, and the race leaves a weak member in."""
    # als leads alone; edlae is the best linear member, multvae a weak one, ease a non-member behind both
    clock, calls = _two_second_trials(monkeypatch, {"als": 0.44, "edlae": 0.43, "multvae": 0.30, "ease": 0.42})
    models = ["als", "ease", "edlae", "multvae"]
    search = Search(planted_split, models, seconds=200, race=0.9, patience=None, blend=True)
    found = search.run()
    used = _seconds_per_model(calls)
    # als 1; the members edlae and multvae ½ each (one model, als, ahead); ease ¼ (als and the members ahead)
    weight = {"als": 1.0, "edlae": 0.5, "multvae": 0.5, "ease": 0.25}
    for m in models:
        assert abs(used[m] / weight[m] - used["als"]) <= 2.0 / weight[m] + 1e-9, (m, used)
    assert used["multvae"] > 40  # 0.30 < 0.9 × 0.44, but as a member the race keeps it
    assert search._members(found) == ["edlae", "multvae"]

    calls.clear()
    clock[0] = 0.0
    Search(planted_split, models, seconds=200, race=0.9, patience=None).run()  # without the Blend: ranked alone, raced out
    alone = Counter(name for name, _, _ in calls)
    assert alone["multvae"] == 1 and alone["ease"] < alone["edlae"] < alone["als"]
