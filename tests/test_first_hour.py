"""A new user's first hour, scripted: a raw click log through Python and through the ``recae`` command.

The log looks like a shop's export: string ids (``user_0042``, ``sku-9F3A``), repeated clicks on
the same item, ISO 8601 text timestamps, some users with only a few items. Each step checks
what the library or the command says about what it did to the data.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

import recae
from recae.cli import main
from recae.exceptions import DataWarning, UnknownIdError

MIN_USER = 5


def click_log(n_rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    """About 1,500 (user, item) pairs clicked 1-40 times each; about a quarter of the users have < 5 items."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 150, 300
    users = np.array([f"user_{i:04d}" for i in rng.permutation(10000)[:n_users]])
    items = np.array([f"sku-{i:04X}" for i in rng.permutation(65536)[:n_items]])
    activity = rng.lognormal(0.0, 0.8, n_users)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    rows = []
    while len(rows) < n_rows:
        u = rng.choice(n_users, p=activity / activity.sum())
        i = rng.choice(n_items, p=pop / pop.sum())
        rows += [(u, i)] * min(int(rng.geometric(0.35)), 40)  # repeated clicks on one item
    rows = np.array(rows[:n_rows])
    ts = np.datetime64("2024-03-01T00:00:00") + rng.integers(0, 30 * 86400, n_rows).astype("timedelta64[s]")
    return pd.DataFrame({"user": users[rows[:, 0]], "item": items[rows[:, 1]],
                         "ts": pd.Series(ts).dt.strftime("%Y-%m-%dT%H:%M:%SZ")})


@pytest.fixture(scope="module")
def log_df() -> pd.DataFrame:
    return click_log()


@pytest.fixture(scope="module")
def log_file(log_df, tmp_path_factory):
    path = tmp_path_factory.mktemp("first_hour") / "clicks.csv"
    log_df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def expected(log_df) -> dict:
    """What the log holds, counted with pandas alone."""
    items_per_user = log_df.groupby("user")["item"].nunique()
    light = sorted(items_per_user[items_per_user < MIN_USER].index)
    pairs = log_df.groupby(["user", "item"]).size()
    return {"pairs": len(pairs), "most_clicks": int(pairs.max()), "users": len(items_per_user), "light": light,
            "heavy": sorted(items_per_user[items_per_user >= MIN_USER].index)}


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_log_is_what_the_scenario_describes(log_df, expected):
    assert 4900 <= len(log_df) <= 5000 and expected["most_clicks"] > 10
    assert 0.15 < len(expected["light"]) / expected["users"] < 0.5
    assert log_df["ts"].iloc[0].endswith("Z") and log_df["user"].iloc[0].startswith("user_")


# ------------------------------------------------------------------------------ Python
def test_repeated_clicks_become_one_positive_per_pair(log_file, log_df, expected, caplog):
    with caplog.at_level(logging.INFO, logger="recae.data"):
        data = recae.Interactions.from_csv(log_file, timestamp="ts")
    assert not data.has_ratings and data.nnz == expected["pairs"]
    assert set(np.unique(data.matrix.data)) == {1.0}  # presence, not click counts
    assert data.merged_rows == len(log_df) - expected["pairs"]
    assert f"merged {len(log_df) - expected['pairs']} repeated (user, item) rows" in caplog.text
    assert "text dates" in caplog.text
    counts = recae.Interactions.from_csv(log_file, timestamp="ts", duplicates="sum")  # counts on request
    assert counts.matrix.data.max() == expected["most_clicks"] and counts.matrix.data.sum() == len(log_df)


def test_iso_text_timestamps_are_parsed(log_file, log_df):
    data = recae.Interactions.from_csv(log_file, timestamp="ts")
    latest = pd.to_datetime(log_df["ts"]).groupby([log_df["user"], log_df["item"]]).max()
    got = data.to_pandas().set_index(["user", "item"])["timestamp"]
    want = (latest - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    np.testing.assert_array_equal(got.sort_index().to_numpy(), want.sort_index().to_numpy())


def test_binarize_on_a_log_without_ratings_warns(log_file):
    data = recae.Interactions.from_csv(log_file, timestamp="ts")
    with pytest.warns(DataWarning, match=r"binarize\(3\.5\) kept 0 of [\d,]+ entries.*no ratings.*use the log as it is"):
        assert data.binarize(3.5).nnz == 0
    counts = recae.Interactions.from_csv(log_file, timestamp="ts", duplicates="sum")
    with pytest.warns(DataWarning, match=r"event counts \(1 to \d+ per \(user, item\) pair\), not ratings"):
        counts.binarize(3.5)


def test_filter_says_whom_it_dropped(log_file, expected, caplog):
    data = recae.Interactions.from_csv(log_file, timestamp="ts")
    with caplog.at_level(logging.INFO, logger="recae.data"):
        kept = data.filter(min_user=MIN_USER)
    assert sorted(kept.user_ids) == expected["heavy"]
    assert f"dropped {len(expected['light'])} of {expected['users']} users" in caplog.text
    (record,) = kept.drops
    assert sorted(record.users) == expected["light"]
    assert kept.why_dropped(expected["light"][0]) == f"removed by filter(min_user={MIN_USER}, min_item=1)"
    assert kept.why_dropped("user_never_seen") is None and kept.why_dropped(expected["heavy"][0]) is None
    split = recae.strong_generalization_split(kept, 0.1, random_state=1)
    assert split.train.drops == kept.drops  # derived logs keep the record
    with pytest.warns(DataWarning, match=r"filter\(min_user=40, min_item=1\) kept .* lower min_user"):
        data.filter(min_user=40)


def test_default_ease_fits_the_log_and_recommends(log_file, expected):
    kept = recae.Interactions.from_csv(log_file, timestamp="ts").filter(min_user=MIN_USER)
    model = recae.EASE().fit(kept)
    ids, scores = model.recommend(expected["heavy"][0], n=5)
    assert len(ids) == 5 and all(i.startswith("sku-") for i in ids) and np.all(np.diff(scores) <= 0)
    ids, _ = model.recommend(expected["heavy"][:3], n=5)
    assert ids.shape == (3, 5)
    with pytest.raises(UnknownIdError):  # the model side words this one (see the report)
        model.recommend(expected["light"][0])


# ------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def cli_model(log_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("first_hour_cli") / "m.recae"
    rc = main(["fit", "--data", str(log_file), "--timestamp-col", "ts", "--model", "ease", "--threads", "1",
               "--out", str(out)])
    assert rc == 0
    return out


def test_cli_fit_says_what_it_did_to_the_log(log_file, log_df, expected, tmp_path, capsys):
    out = tmp_path / "m.recae"
    rc, stdout, err = run(capsys, "fit", "--data", log_file, "--timestamp-col", "ts", "--model", "ease", "--out", out)
    assert rc == 0 and err == ""
    merged = len(log_df) - expected["pairs"]
    assert f"{merged:,} repeated (user, item) rows merged into {expected['pairs']:,} entries" in stdout
    assert f"--min-user 5 dropped {len(expected['light']):,} of {expected['users']:,} users" in stdout
    assert f"{len(expected['heavy'])} users" in stdout and str(out) in stdout
    model = recae.load(out)
    assert sorted(model.user_ids_) == expected["heavy"]


def test_cli_binarize_on_a_log_without_ratings_warns(log_file, tmp_path, capsys):
    rc, _, err = run(capsys, "fit", "--data", log_file, "--binarize", "0.5", "--model", "popularity",
                     "--out", tmp_path / "p.recae")
    assert rc == 0
    assert err.startswith("recae: warning: --binarize 0.5 ignored: this log has no ratings")


def test_cli_recommends_for_known_users_and_lists_filtered_ones(cli_model, log_file, expected, capsys):
    known, light = expected["heavy"][:2], expected["light"][0]
    rc, out, err = run(capsys, "recommend", "--model-file", cli_model, "--user", ",".join(known + [light]),
                       "--skip-unknown", "-n", "4", "--format", "json")
    assert rc == 0
    rows = json.loads(out)
    assert sorted({r["user"] for r in rows}) == known and len(rows) == 8
    assert "1 unknown user id(s) left out" in err and light in err
    python = recae.EASE().fit(recae.Interactions.from_csv(log_file, timestamp="ts").filter(min_user=MIN_USER))
    ids, _ = python.recommend(known[0], n=4)
    assert [r["item"] for r in rows if r["user"] == known[0]] == ids.tolist()  # CLI and Python agree
    rc, out, err = run(capsys, "recommend", "--model-file", cli_model, "--user", light)
    assert rc == 2 and light in err and "--skip-unknown" in err


def test_cli_evaluate_names_its_spreads(log_file, capsys):
    rc, out, err = run(capsys, "evaluate", "--data", log_file, "--model", "popularity", "--k", "10",
                       "--seeds", "1", "2", "--heldout", "0.2", "-q", "--threads", "1")
    assert rc == 0, err
    header = next(line for line in out.splitlines() if "std_over_seeds" in line)
    assert header.split() == ["mean", "std_over_seeds", "se_over_users", "seeds"]


def test_validation_split_holds_out_users_for_early_stopping(log_file):
    kept = recae.Interactions.from_csv(log_file, timestamp="ts").filter(min_user=MIN_USER)
    train, (fold_in, target) = recae.validation_split(kept, 0.2, random_state=3)
    n = int(0.2 * kept.n_users)
    assert fold_in.n_users == target.n_users == n and train.n_users == kept.n_users - n
    assert not set(train.user_ids) & set(fold_in.user_ids)
    assert fold_in.item_ids.tolist() == train.item_ids.tolist()  # one item index for fit(train, valid=...)
    assert fold_in.nnz + target.nnz <= kept.take_users(kept.user_index(fold_in.user_ids)).nnz
    assert (np.diff(target.matrix.indptr) > 0).sum() > 0.5 * n  # most held-out users have a target
    again = recae.validation_split(kept, 0.2, random_state=3)
    assert again[0].user_ids.tolist() == train.user_ids.tolist()
    with pytest.raises(recae.DataError, match="n_heldout"):
        recae.validation_split(kept, 1.0)
