"""recae tune's bad input: refused before the search where it can be, named where it cannot."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("optuna")

from recae import DataError  # noqa: E402
from recae.exceptions import DataWarning  # noqa: E402
from recae.bench.search import Search  # noqa: E402
from recae.bench.spaces import check_grid, distributions, start  # noqa: E402
from recae.cli import main  # noqa: E402
from recae.tuning import tune  # noqa: E402


# `planted` is synthetic, with ratings 1-5 by design: the warning about ratings has its own test
pytestmark = pytest.mark.filterwarnings("ignore:data holds ratings")


@pytest.mark.parametrize("kwargs, match", [
    ({"spaces": [1, 2]}, "spaces must be a dict .* got a list"),
    ({"random_state": -1}, "random_state must be an integer >= 0"),
    ({"random_state": 1.5}, "random_state must be an integer >= 0"),
    ({"max_epochs": 0}, "max_epochs must be an integer >= 1"),
    ({"models": []}, "at least one model"),
    ({"models": ["ease", "edlae", "blend"]}, "'blend' combines two or more members: one of edlae/ease/sparseease"),
    ({"storage": 123}, r"storage must be a file path \(str or os.PathLike\) such as 'tune.db'; got 123"),
])
def test_bad_arguments_are_refused_before_the_search(planted, monkeypatch, kwargs, match):
    monkeypatch.setattr(Search, "run", lambda self: pytest.fail("the search ran"))
    with pytest.raises(DataError, match=match):
        tune(planted, **{"models": ["ease"], "budget": 2, **kwargs})


def test_one_model_name_is_one_model_not_its_letters(planted):
    result = tune(planted, models="ease ", budget=1, refit=False)  # a stray space, as a shell list can leave
    assert result.name == "ease" and [r["model"] for r in result.leaderboard] == ["ease"]


def test_integer_parameters_take_whole_numbers_and_stay_integers():
    with pytest.raises(DataError, match="als.factors takes whole numbers .* got 1.5"):
        check_grid("als", {"factors": [1.5, 2.5]})
    assert check_grid("als", {"factors": [16.0, 64.0]}) == {"factors": [16, 64]}
    with pytest.raises(DataError, match="bpr.num_threads is fixed at 1 in every search trial, so a seed repeats"):
        check_grid("bpr", {"num_threads": [2]})  # before: searched, and a seed no longer repeated its trials
    dist = distributions("als", {"factors": [16.0, 32.0, 64.0]}, within=True)["factors"]
    assert (dist.low, dist.high) == (16, 64) and type(dist).__name__ == "IntDistribution"


def test_a_given_space_is_not_widened_to_the_default():
    # ALS's default is 256 factors: the given range keeps its ends, and the first trial the nearer one
    assert start("als", {"factors": [16, 32, 64]}, within=True) == {"factors": 64}
    assert start("ease", {"l2": [1.0, 5.0]}, within=True) == {"l2": 5.0}
    dist = distributions("als", {"factors": [16, 32, 64]}, within=True)["factors"]
    assert (dist.low, dist.high) == (16, 64)
    assert start("multdae", {"dropout": [0.1, 0.2]}, within=True)["dropout"] in (0.1, 0.2)
    # the models' own grids keep their defaults, as the committed searches ran them
    assert start("als")["factors"] == 256


def test_a_space_value_the_model_refuses_is_named_before_the_search(planted, monkeypatch):
    monkeypatch.setattr(Search, "run", lambda self: pytest.fail("the search ran"))  # before: trials ran, then it failed
    with pytest.raises(DataError, match=r"ease.l2: the search space value -100.0 is one EASE refuses \(l2 must be "):
        tune(planted, models=["ease"], spaces={"ease": {"l2": [-100.0, 1000.0]}}, budget=3)
    with pytest.raises(DataError, match=r"multdae.dropout: the search space value 1.0 is one MultDAE refuses"):
        tune(planted, models=["multdae"], spaces={"multdae": {"dropout": [0.5, 1.0]}}, budget=3)


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path, planted):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (t TEXT)")
    before = db.read_bytes()
    with pytest.raises(DataError, match=r"SQLite database of something else \(tables \['notes'\]\)"):
        tune(planted, models=["ease"], budget=1, storage=db)
    assert db.read_bytes() == before


def test_a_stored_search_says_what_differs(tmp_path, planted):
    db = tmp_path / "tune.db"
    tune(planted, models=["ease", "edlae"], budget=2, storage=db, refit=False)
    with pytest.raises(DataError, match=r"another search space \(stored \{'l2'.*now \{'l2': \[100.0, 3000.0\]\}\)"):
        tune(planted, models=["ease", "edlae"], budget=2, storage=db, spaces={"ease": {"l2": [100, 3000]}})
    with pytest.raises(DataError, match=r"other models searched \(stored \['ease', 'edlae'\], now \['ease'\]\)"):
        tune(planted, models=["ease"], budget=2, storage=db)
    # a temporal split: a HoldoutSplit with one validation item per user (planted's holdout one has none)
    with pytest.raises(DataError, match=r"other data \(.*stored StrongSplit with \d+ training users.*now HoldoutSplit"):
        tune(planted, models=["ease", "edlae"], budget=2, storage=db, protocol="temporal")


@pytest.mark.parametrize("args, match", [
    (["--budget", "-5"], "at least 1 trial; got -5"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--space", "[1, 2]"], "--space must be a JSON object"),
    (["--max-epochs", "0"], "--max-epochs must be a positive integer"),
])
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, args, match):
    assert main(["tune", "--data", "synthetic", "--models", "ease", "--out", str(tmp_path / "m.recae"), *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_cli_refuses_an_unwritable_out_before_the_search(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Search, "run", lambda self: pytest.fail("the search ran"))
    (tmp_path / "a.csv").write_text("x")
    for args, match in ((["--out", str(tmp_path / "a.csv" / "m.recae")], "is a file"),
                        (["--out", str(tmp_path)], "is a folder"),
                        (["--out", str(tmp_path / "m.recae"), "--report-dir", str(tmp_path / "a.csv")], "is a file")):
        assert main(["tune", "--data", "synthetic", "--models", "ease", "--budget", "2", *args]) == 2
        assert match in capsys.readouterr().err


def test_cli_makes_a_missing_out_folder(tmp_path):
    out = tmp_path / "new" / "deeper" / "m.recae"
    assert main(["tune", "--data", "synthetic", "--budget", "1", "--models", "ease", "--quiet", "--out", str(out)]) == 0
    assert out.exists() and (out.parent / "m_tune.md").exists()


def test_a_resumed_search_clock_carries_on_from_its_last_finished_trial(tmp_path, planted_split, monkeypatch):
    import types

    import recae.bench.search as search_module

    db = tmp_path / "tune.db"
    first = Search(planted_split, ["ease"], n_trials=2, storage=db).run().records
    last = max(r["elapsed"] for r in first)
    assert last > sum(r["seconds"] for r in first)  # the time between trials counts on the clock
    starts = []

    def fake_trial(self, name, order, cap, t0):
        starts.append(t0)
        raise KeyboardInterrupt  # only the resumed clock is of interest

    monkeypatch.setattr(search_module, "time", types.SimpleNamespace(perf_counter=lambda: 1000.0))
    monkeypatch.setattr(Search, "_trial", fake_trial)
    with pytest.raises(KeyboardInterrupt):
        Search(planted_split, ["ease"], seconds=600, storage=db).run()
    assert starts == [pytest.approx(1000.0 - last)]


def test_a_stored_search_over_the_budget_says_that_nothing_new_runs(tmp_path, planted_split):
    db = tmp_path / "tune.db"
    Search(planted_split, ["ease"], n_trials=2, storage=db).run()
    with pytest.warns(DataWarning, match="already holds 2 finished trials, at or over the budget of 1"):
        again = Search(planted_split, ["ease"], n_trials=1, storage=db).run()
    assert len(again.records) == 2


def test_two_given_numbers_are_the_ends_of_a_range():
    dist = distributions("als", {"factors": [16, 64]}, within=True)["factors"]
    assert type(dist).__name__ == "IntDistribution" and (dist.low, dist.high) == (16, 64)
    assert hasattr(distributions("als", {"factors": [64]}, within=True)["factors"], "choices")  # one value: fixed
    # outside a user's space (the models' own grids) two values stay a choice of the two, as the
    # committed searches ran them
    assert distributions("als", {"factors": [64, 256]})["factors"].choices == (64, 256)


@pytest.mark.parametrize("kwargs, match", [({"patience": 0}, "patience must be an integer >= 1"),
                                           ({"patience": 2.5}, "patience must be an integer >= 1"),
                                           ({"threads": 0}, "threads must be an integer >= 1"),
                                           ({"threads": -1}, "threads must be an integer >= 1")])
def test_patience_and_threads_are_checked(planted, kwargs, match):
    with pytest.raises(DataError, match=match):
        tune(planted, models=["ease"], budget=2, **kwargs)


def test_spaces_take_model_names_in_any_case_and_numpy_values(planted):
    import numpy as np

    result = tune(planted, models=["EASE"], budget=2, spaces={"EASE": {"l2": np.array([10.0, 20.0])}}, refit=False)
    assert all(10.0 <= r["params"]["l2"] <= 20.0 for r in result.trials)


def test_the_search_keeps_optunas_info_lines_to_itself(planted, capsys):
    import optuna

    level = optuna.logging.get_verbosity()
    tune(planted, models=["ease"], budget=1, refit=False)
    assert "A new study created" not in capsys.readouterr().err
    assert optuna.logging.get_verbosity() == level  # put back as it was


def test_a_report_folder_that_is_a_file_is_named(planted, tmp_path):
    from recae.tuning import write

    result = tune(planted, models=["ease"], budget=1, refit=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="is a file; pass a folder"):
        write(result, tmp_path / "afile", "r", command="test")


def test_models_that_leave_early_are_named_in_the_result_and_the_report(planted, tmp_path):
    from recae.tuning import write

    # BPR is far under 0.9 × EASE after its default: the race takes it out of a trial budget too;
    # popularity has no setting to search after its default
    result = tune(planted, models=["popularity", "ease", "bpr"], budget=8, refit=False)
    assert "< 0.90 × the leader's" in result.info["left"]["bpr"]
    assert result.info["left"]["popularity"] == "all 1 settings of its space are tried"
    assert [sum(r["model"] == m for r in result.trials) for m in ("popularity", "bpr")] == [1, 1]
    md = write(result, tmp_path, "r", command="test")["md"].read_text()
    assert "left the rotation: " in md and "bpr (best 0." in md


def test_the_json_report_is_strict_json(planted, tmp_path):
    import json

    from recae.tuning import write

    result = tune(planted, models=["ease", "linearae", "blend"], budget=2, refit=False)
    assert any(r["model"] == "blend" for r in result.leaderboard)  # its default score is NaN: no default trial

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    report = json.loads(write(result, tmp_path, "r", command="test")["json"].read_text(), parse_constant=refuse)
    blend = next(r for r in report["leaderboard"] if r["model"] == "blend")
    assert blend["default_valid_ndcg@100"] is None


def test_the_averaged_blend_is_told_apart_by_name():
    from recae.tuning.report import label

    assert label({"model": "blend", "params": {"members": ["ease"], "settings": [{}]}}) == "blend (averaged trials)"
    assert label({"model": "blend", "params": {"members": ["ease"]}}) == "blend"


def test_a_temporal_search_claims_no_split_seed(tmp_path):
    from recae.datasets import synthetic
    from recae.tuning import write

    stamped = synthetic(n_users=200, n_items=80, random_state=5)
    result = tune(stamped, models=["ease"], budget=1, protocol="temporal", random_state=1, refit=False)
    assert result.info["split_seed"] is None and "seed" not in result.model.quality_["source"]
    assert "protocol temporal, split by time, random_state 1" in write(result, tmp_path, "r", command="t")["md"].read_text()


def test_recommending_for_a_user_a_no_refit_tune_held_out_says_why(planted, tmp_path, capsys):
    import numpy as np

    path = tmp_path / "m.recae"
    result = tune(planted, models=["ease"], budget=1, refit=False)
    result.save(path)
    held_out = next(u for u in planted.user_ids if u not in set(np.asarray(result.model.user_ids_)))
    assert main(["recommend", "--model-file", str(path), "--user", str(held_out)]) == 2
    assert "recae tune --no-refit fitted this model without the users its split held out" in capsys.readouterr().err


def test_the_trainers_repeated_warnings_show_once_per_search(planted_split, monkeypatch, caplog):
    import logging

    def noisy_trial(self, name, order, cap, t0):
        logging.getLogger("recae.train").warning("MultDAE: 2 torch threads on 2 cores")
        record = {"model": name, "trial": order, "order": order, "params": {"n": order}, "valid_ndcg@100": 0.1,
                  "state": "complete", "seconds": 0.0, "elapsed": 0.0}
        return record, object()

    monkeypatch.setattr(Search, "_trial", noisy_trial)
    with caplog.at_level("WARNING", logger="recae.train"):
        Search(planted_split, ["ease"], n_trials=3, patience=None).run()
        assert caplog.text.count("2 torch threads") == 1
        logging.getLogger("recae.train").warning("MultDAE: 2 torch threads on 2 cores")  # the filter is gone
    assert caplog.text.count("2 torch threads") == 2


def test_models_without_a_result_are_warned_about_and_reported(planted, tmp_path):
    from recae.tuning import write

    with pytest.warns(DataWarning) as caught:
        result = tune(planted, models=["popularity", "ease", "cdae", "blend"], budget=2, refit=False)
    ran = {r["model"] for r in result.trials}
    missing = [m for m in ("popularity", "ease", "cdae") if m not in ran]
    assert len(missing) == 1 and result.info["not_run"][missing[0]] == "the budget was spent before its first trial"
    assert "it needs two members with a finished trial" in result.info["not_run"]["blend"]
    said = " | ".join(str(w.message) for w in caught)
    assert f"{missing[0]} is not among the results" in said and "blend is not among the results" in said
    md = write(result, tmp_path, "r", command="test")["md"].read_text()
    assert f"**not among the results**: {missing[0]} (the budget was spent before its first trial)" in md


def test_a_real_valued_setting_given_whole_numbers_is_searched_as_a_range_of_reals():
    assert check_grid("ease", {"l2": [1, 3]}) == {"l2": [1.0, 3.0]}
    dist = distributions("ease", {"l2": [1, 3]}, within=True)["l2"]
    assert type(dist).__name__ == "FloatDistribution" and (dist.low, dist.high) == (1.0, 3.0)


def test_a_small_integer_space_is_exhausted_not_repeated(planted):
    result = tune(planted, models=["als"], budget=6, spaces={"als": {"factors": [8, 9]}}, refit=False)
    assert sorted(r["params"]["factors"] for r in result.trials) == [8, 9]
    assert result.info["left"]["als"] == "all 2 settings of its space are tried"


def test_a_time_budget_must_be_finite_and_a_study_name_plain():
    from recae.tuning import parse_budget

    with pytest.raises(DataError, match="must be finite"):
        parse_budget("1" + "0" * 400 + "s")
    for bad in ("", "a/b", None):
        with pytest.raises(DataError, match="study_name must be a non-empty name without '/'"):
            tune(None, models=["ease"], budget=1, study_name=bad)


def test_a_storage_that_cannot_be_written_is_named(planted_split, tmp_path, monkeypatch):
    import optuna

    from recae.bench import storage

    monkeypatch.setattr(storage.os, "access", lambda path, mode: False)
    with pytest.raises(DataError, match="is not writable"):
        storage.storage_url(tmp_path / "t.db")
    monkeypatch.undo()

    def read_only(*args, **kwargs):  # what Optuna raises when SQLite cannot write the file
        try:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        except sqlite3.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc

    monkeypatch.setattr(optuna, "create_study", read_only)
    with pytest.raises(DataError, match=r"could not record the search in .*\(attempt to write a readonly database\)"):
        Search(planted_split, ["ease"], n_trials=1, storage=tmp_path / "t.db")


def test_the_cli_names_bad_models_spaces_and_storage_before_reading_the_data(tmp_path, capsys, monkeypatch):
    from recae.commands import tune as tune_command

    monkeypatch.setattr(tune_command, "load_data", lambda args: pytest.fail("the data was read"))
    base = ["tune", "--data", "synthetic", "--budget", "2", "--out", str(tmp_path / "m.recae")]
    for args, match in ((["--models", "foo"], "unknown model(s) ['foo']"),
                        (["--models", "ease", "--space", '{"ease": {"l2": ["x"]}}'], "ease.l2 takes values of the type"),
                        (["--blend-trials", "0"], "--blend-trials must be a positive number"),
                        (["--storage", str(tmp_path)], "--storage must be a file path")):
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1, err


def test_a_split_with_nothing_to_validate_on_is_named_before_the_search(monkeypatch):
    import numpy as np
    import scipy.sparse as sp

    from recae import Interactions

    monkeypatch.setattr(Search, "run", lambda self: pytest.fail("the search ran"))
    rng = np.random.default_rng(0)
    rows, cols = np.repeat(np.arange(300), 3), np.concatenate([rng.choice(60, 3, replace=False) for _ in range(300)])
    three_each = Interactions(sp.csr_matrix((np.ones(900, np.float32), (rows, cols)), shape=(300, 60)))
    with pytest.warns(DataWarning), pytest.raises(DataError, match="validation part holds no entries .* median of 3"):
        tune(three_each, models=["popularity", "multdae"], budget=2)


def test_a_given_space_holds_for_models_with_fixed_settings(planted):
    # edlae's dropout and linearae's l2 are fixed by their spaces: a user's space replaced them only in name
    r = tune(planted, models=["edlae", "linearae"], budget=6, refit=False,
             spaces={"edlae": {"dropout": [0.5, 0.6]}, "linearae": {"l2": [10, 20]}})
    assert start("edlae", {"dropout": [0.5, 0.6]}, within=True) == {"dropout": 0.5}
    for t in r.trials:
        key, (low, high) = ("dropout", (0.5, 0.6)) if t["model"] == "edlae" else ("l2", (10, 20))
        assert low <= t["params"][key] <= high, t


def test_a_trial_budget_repeats_bpr_exactly(planted):
    a, b = (tune(planted, models=["bpr"], budget=2, refit=False) for _ in range(2))
    assert [(t["params"], t["valid_ndcg@100"]) for t in a.trials] == [(t["params"], t["valid_ndcg@100"]) for t in b.trials]
    assert all(t["params"]["num_threads"] == 1 for t in a.trials)  # Hogwild SGD repeats itself on one thread only


def test_a_model_the_race_dropped_stays_out_of_a_resumed_search(planted, tmp_path):
    kw = dict(models=["ease", "bpr"], refit=False)
    whole = tune(planted, budget=8, **kw)
    assert "bpr" in whole.info["left"]  # behind the leader after its first trial
    tune(planted, budget=3, storage=tmp_path / "s.db", **kw)  # stopped after three trials, as by a kill
    resumed = tune(planted, budget=8, storage=tmp_path / "s.db", **kw)
    assert [(t["model"], t["params"]) for t in resumed.trials] == [(t["model"], t["params"]) for t in whole.trials]


def test_storage_damaged_or_of_another_application_is_named(planted, tmp_path):
    import optuna

    tune(planted, models=["ease"], budget=1, refit=False, storage=tmp_path / "s.db")
    (tmp_path / "cut.db").write_bytes((tmp_path / "s.db").read_bytes()[:5000])  # a copy cut short
    with pytest.raises(DataError, match="cut.db' is a damaged SQLite database .*pass a new file path"):
        tune(planted, models=["ease"], budget=1, storage=tmp_path / "cut.db")
    optuna.create_study(storage=f"sqlite:///{tmp_path / 'other.db'}", study_name="mystudy")
    with pytest.raises(DataError, match=r"holds Optuna studies \['mystudy'\] that no recae search wrote"):
        tune(planted, models=["ease"], budget=1, storage=tmp_path / "other.db", study_name="mystudy")


def test_ratings_and_tiny_logs_are_named(planted):
    from recae.datasets import synthetic

    with pytest.warns(DataWarning, match=r"data holds ratings.*data.binarize\(3.5\)"):
        tune(planted, models=["ease"], budget=1, refit=False)
    with pytest.raises(DataError, match="6 users are too few for validation and test users of their own .* at least 10 users"):
        tune(synthetic(n_users=6, n_items=30, random_state=0).binarize(3.5), models=["ease"], budget=1)
    with pytest.warns(DataWarning, match="the validation part has .* user.* with held-out items"):
        tune(synthetic(n_users=40, n_items=30, random_state=0).binarize(1), models=["ease"], budget=1, refit=False)
    # stored zeros (clicks of 0) are held out like positives, yet no model of positives can hit one
    import numpy as np
    import scipy.sparse as sp
    from recae import Interactions
    log = synthetic(n_users=200, n_items=60, random_state=0).binarize(3.5)
    X = log.matrix.copy()
    X.data[::2] = 0.0  # half the entries: impressions without a click
    clicks = Interactions(sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape), log.user_ids, log.item_ids)
    assert clicks.nnz == log.nnz and not np.all(clicks.matrix.data)
    with pytest.warns(DataWarning, match=r"of the validation part's .* held-out entries are stored zeros, which no "
                                         r"model of positives can hit: drop them before the search \(data.binarize\(0\)"):
        tune(clicks, models=["popularity"], budget=1, refit=False)


def test_python_arguments_of_the_wrong_kind_are_named_before_any_trial(planted):
    """Before: models=5 and on_trial=3 raised raw TypeErrors (the latter after a trial), refit="no" refitted."""
    for kwargs, message in ((dict(models=5), r"models must be a list of model names, e.g. \['ease', 'als'\]; got 5"),
                            (dict(refit="no"), r"refit must be True or False, on_trial None or a function; got 'no'"),
                            (dict(on_trial=3), r"on_trial None or a function; got True, 3")):
        with pytest.raises(DataError, match=message):
            tune(planted, **{"models": ["ease"], "budget": 1, **kwargs})
