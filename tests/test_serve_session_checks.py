"""Serving checks below HTTP: what a session refuses before it journals or swaps, and what it follows."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from recae import Interactions
from recae.datasets.synthetic import synthetic
from recae.exceptions import DataError, ModelFileError
from recae.models import EASE, BiasedMF
from recae.serve import Journal, JournalError, Session


@pytest.fixture(scope="module")
def ease():
    return EASE(l2=50.0, device="cpu").fit(synthetic(n_users=200, n_items=80, random_state=0))


def _renamed(model, items=lambda i: i, users=lambda u: u):
    """The same log as ``model``'s training data with its ids mapped: another id type or catalogue."""
    coo = model.user_items_.tocoo()
    frame = pd.DataFrame({"user": [users(u) for u in model.user_ids_[coo.row]],
                          "item": [items(i) for i in model.item_ids_[coo.col]]})
    return EASE(l2=50.0, device="cpu").fit(Interactions.from_pandas(frame, user="user", item="item"))


def test_a_rating_model_refuses_an_append_without_ratings_or_off_its_scale(tmp_path):
    rng = np.random.default_rng(0)
    u, i = np.nonzero(rng.random((60, 30)) < 0.3)
    log = Interactions.from_pandas(pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, len(u))}),
                                   rating="rating")
    model = BiasedMF(factors=2, epochs=2, random_state=0, device="cpu", rating_range=(1, 5)).fit(log)
    s = Session(model, journal=tmp_path / "j")
    with pytest.raises(DataError, match='BiasedMF folds in ratings, not bare item ids: send "ratings"'):
        s.update_history(1000, [1, 2])  # before: journalled as 1.0, the lowest star
    with pytest.raises(DataError, match="outside the declared scale"):
        s.update_history(1000, [1], ratings=[50.0])  # the model's declared 1-5 scale
    assert Journal(tmp_path / "j").last_seq() == 0
    assert s.update_history(1000, [1, 2], ratings=[5.0, 4.0])["seq"] == 1
    s.close()


def test_values_that_overflow_the_scores_are_refused_before_the_journal(ease, tmp_path):
    s = Session(ease, journal=tmp_path / "j")
    top = s.popular(50)["items"]
    with pytest.raises(DataError, match="scores overflow float32; send smaller values"):
        s.update_history(5000, top, ratings=[3.4e38] * len(top))
    assert Journal(tmp_path / "j").last_seq() == 0  # nothing kept: the user is not poisoned for good
    assert s.update_history(5000, top, ratings=[1e6] * len(top))["seq"] == 1  # large but finite scores: kept
    assert np.isfinite(s.recommend(5000, n=3)["scores"]).all()
    s.close()


def test_a_reload_to_other_ids_or_another_catalogue_is_refused(ease, tmp_path):
    folder = tmp_path
    _renamed(ease, items=lambda i: f"item{i}").save(folder / "text_items.recae")
    _renamed(ease, users=lambda u: f"user{u}").save(folder / "text_users.recae")
    _renamed(ease, items=lambda i: i + 10**6).save(folder / "disjoint.recae")
    _renamed(ease, items=lambda i: i if i % 2 else i + 10**6).save(folder / "half.recae")
    s = Session(ease, journal=folder / "j")
    items = [int(x) for x in ease.item_ids_[:4]]
    s.update_history(7000, items)
    for name, message in [("text_items", "its item ids are strings, the served model's are integers"),
                          ("text_users", "its user ids are strings, the served model's are integers"),
                          ("disjoint", "shares no item id with the served model")]:
        with pytest.raises(ModelFileError, match=message):
            s.reload(folder / f"{name}.recae")
        assert s.model is ease
    assert s.stats["reloads_refused"] == 3
    done = s.reload(folder / "half.recae")
    assert done["appended_items_unknown"] == sum(i % 2 == 0 for i in items)
    s.close()


def test_a_reload_to_a_model_that_reads_appends_otherwise_is_refused(ease, tmp_path, capsys):
    """A click journalled as 1.0 would read as a 1-star rating: before, the reload answered 200 and the
    appended users then got 422s for good (the journal keeps the values); a restart is checked alike."""
    from recae.cli import main

    coo = ease.user_items_.tocoo()
    ratings = Interactions.from_pandas(pd.DataFrame({"user": ease.user_ids_[coo.row], "item": ease.item_ids_[coo.col],
                                                     "rating": 1 + coo.row % 5}), rating="rating")
    BiasedMF(factors=2, epochs=1, random_state=0, device="cpu").fit(ratings).save(tmp_path / "mf.recae")
    s = Session(ease, journal=tmp_path / "j")
    s.update_history(7000, [int(ease.item_ids_[0])])
    with pytest.raises(ModelFileError, match=r"mf.recae: it reads ratings, but this server has appended interactions "
                                             r"of a model of positives \(for 1 item\(s\)\) that it would misread"):
        s.reload(tmp_path / "mf.recae")
    assert s.model is ease
    s.close()
    assert main(["serve", str(tmp_path / "mf.recae"), "--journal", str(tmp_path / "j"), "--port", "0"]) == 2
    assert "holds 1 append(s) without ratings, journalled for a model of positives; BiasedMF reads ratings" \
        in capsys.readouterr().err


def test_integer_ids_are_ascii_digits_an_int64_can_hold(ease):
    """'１' (full-width) was read as user 1; 5,000 digits made int() raise inside, a 500."""
    from recae.serve.state import coerce_id
    assert coerce_id(" 42 ", ease.user_ids_, "user") == 42
    for text in ("１", "١", "9" * 5000):
        with pytest.raises(DataError, match="user must be an integer"):
            coerce_id(text, ease.user_ids_, "user")


@pytest.mark.parametrize("read", ["similar", "popular"])
def test_every_read_follows_another_workers_reload(ease, tmp_path, read):
    ease.save(tmp_path / "a.recae")
    _renamed(ease, items=lambda i: i if i % 2 else i + 10**6).save(tmp_path / "b.recae")
    mine = Session(tmp_path / "a.recae", journal=tmp_path / "j")
    other = Session(tmp_path / "a.recae", journal=tmp_path / "j")  # another worker on the same journal
    other.reload(tmp_path / "b.recae")
    # before: /similar and /items never looked at the journal, so a worker kept its old model for them
    getattr(mine, read)(*([int(ease.item_ids_[1]), 3] if read == "similar" else [3]))
    deadline = time.monotonic() + 60  # the swap loads the file on a thread of its own
    while mine.state.generation < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine.state.generation == 1 and mine.state.path == str(tmp_path / "b.recae")
    mine.close()
    other.close()


def test_recommend_new_names_a_bad_unknown_policy(ease):
    s = Session(ease)
    with pytest.raises(DataError, match="unknown must be 'raise' or 'ignore'; got 'bogus'"):
        s.recommend_new([int(ease.item_ids_[0])], unknown="bogus")


def test_a_record_read_back_as_bytes_is_damaged_not_a_crash(tmp_path):
    j = Journal(tmp_path / "j")
    j.append({"user": 1, "items": [2], "ratings": None})
    j.append({"user": 1, "items": [3], "ratings": None})
    j.close()
    db = sqlite3.connect(tmp_path / "j")
    db.execute("UPDATE events SET payload = X'00ff' WHERE seq = 2")  # what a damaged page can read back as
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="record 2 fails its CRC-32 check"):
        Journal(tmp_path / "j").since(0)


def test_salvage_keeps_every_record_that_passes_its_checks(tmp_path):
    from recae.serve.salvage import salvage

    j = Journal(tmp_path / "j")
    for user in (1, 2, 3):
        j.append({"user": user, "items": [user + 10], "ratings": None})
    j.set_generation(4, "/models/v4.recae")
    j.close()
    assert salvage(tmp_path / "j") == {"kept": 3, "damaged": [], "unreadable_after": None, "moved_to": None}
    with sqlite3.connect(tmp_path / "j") as db:
        db.execute("UPDATE events SET crc = crc + 1 WHERE seq = 2")
    done = salvage(tmp_path / "j")
    assert done["kept"] == 2 and done["damaged"] == [2] and done["unreadable_after"] is None
    fresh = Journal(tmp_path / "j")
    assert [r["user"] for _, r in fresh.since(0)] == [1, 3]  # before: the advice was to move all of it aside
    assert fresh.generation() == (4, "/models/v4.recae")
    fresh.close()
    kept = Journal(done["moved_to"])  # the damaged file, kept for a look
    with pytest.raises(JournalError, match="record 2 fails its CRC-32 check"):
        kept.since(0)
    kept.close()
    with pytest.raises(JournalError, match="no journal at"):
        salvage(tmp_path / "missing")


def test_a_salvage_killed_at_any_step_of_its_swap_is_finished_losing_nothing(tmp_path, monkeypatch):
    """Before, a kill between moving the damaged journal away and naming the rebuilt one left no
    journal at all, and the next start served an empty one. Each file operation is a kill point here."""
    import os

    from recae.serve import salvage as salvaging

    class Killed(BaseException):
        pass

    def damaged(path):
        j = Journal(path)
        for user in (1, 2, 3):
            j.append({"user": user, "items": [user + 10], "ratings": None})
        j.close()
        with sqlite3.connect(path) as db:
            db.execute("UPDATE events SET crc = crc + 1 WHERE seq = 2")

    def read(path):
        j = Journal(path)
        try:
            return [r["user"] for _, r in j.since(0)]
        finally:
            j.close()

    for kill_at in range(1, 30):
        path = str(tmp_path / f"j{kill_at}")
        damaged(path)
        calls = [0]
        with monkeypatch.context() as m:
            for name in ("replace", "remove", "link"):
                def step(*args, _real=getattr(os, name), **kwargs):
                    calls[0] += 1
                    if calls[0] == kill_at:
                        raise Killed
                    return _real(*args, **kwargs)
                m.setattr(os, name, step)
            try:
                salvaging.salvage(path)
                finished = True
            except Killed:
                finished = False
        salvaging.finish(path)  # what `recae serve` does first on its next start
        try:
            users = read(path)
        except JournalError:  # killed before the swap began: still the damaged journal, salvaged again
            assert salvaging.salvage(path)["kept"] == 2
            users = read(path)
        assert users == [1, 3], (kill_at, users)
        assert not os.path.exists(path + salvaging.MARKER)
        if finished:
            break
    assert finished and kill_at > 3  # the loop reached a salvage no kill interrupted


def test_a_training_user_with_an_empty_row_is_served_popularity_and_says_so():
    import scipy.sparse as sp

    X = sp.random(30, 12, density=0.3, format="csr", random_state=0)
    X.data[:] = 1.0
    X = sp.csr_matrix(X.toarray() * (np.arange(30) != 7)[:, None])  # user 7 has no training entries
    model = EASE(l2=1.0, device="cpu").fit(Interactions(X))
    s = Session(model)
    got = s.recommend(7, n=3)
    assert got["fallback"] == "popularity" and got["items"] == model.recommend_new([], n=3)[0].tolist()
    assert "fallback" not in s.recommend(0, n=3)
