"""The ``recae`` command, run in-process through ``recae.cli.main`` (plus one real console-script call)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import recae
from recae.cli import main

from conftest import require_data

# user -> {item: stars}; ratings > 3.5 are the positives the CLI fits on by default
RATINGS = {
    1: {10: 5, 11: 4, 12: 5, 13: 2},
    2: {10: 4, 13: 5, 14: 5},
    3: {11: 5, 12: 4, 14: 4, 15: 5},
    4: {10: 5, 15: 4, 16: 5},
    5: {12: 5, 16: 4, 17: 5, 11: 1},
    6: {10: 3, 13: 4, 17: 4, 14: 5},
}
POSITIVES = {u: {i for i, r in items.items() if r > 3.5} for u, items in RATINGS.items()}
CATALOGUE = set().union(*POSITIVES.values())  # 10..17
SUBCOMMANDS = ["demo", "fit", "recommend", "evaluate"]


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_clean_error(rc: int, out: str, err: str, *fragments: str) -> None:
    assert rc == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("recae: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def csv_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "ratings.csv"
    rows = [(u, i, r, 1000 * u + i) for u, items in RATINGS.items() for i, r in items.items()]
    pd.DataFrame(rows, columns=["uid", "iid", "stars", "ts"]).to_csv(path, index=False)
    return path


FIT_ARGS = ["--user-col", "uid", "--item-col", "iid", "--rating-col", "stars", "--min-user", "1"]


@pytest.fixture(scope="module")
def model_file(csv_log) -> Path:
    out = csv_log.parent / "ease.recae"
    assert main(["fit", "--data", str(csv_log), *FIT_ARGS, "--model", "ease", "--param", "l2=1.0",
                 "--param", "device='cpu'", "--out", str(out)]) == 0
    return out


def check_ranking(df: pd.DataFrame, user, n: int) -> None:
    rows = df[df["user"] == user]
    assert len(rows) == n
    assert rows["rank"].tolist() == list(range(1, n + 1))
    assert rows["score"].is_monotonic_decreasing
    items = set(rows["item"].tolist())
    assert len(items) == n
    seen = POSITIVES[user] if user in POSITIVES else set()
    assert items <= CATALOGUE - seen


# ---------------------------------------------------------------------------------- round trips
def test_fit_writes_a_loadable_model(model_file, capsys):
    model = recae.load(model_file)
    assert isinstance(model, recae.EASE) and model.l2 == 1.0 and model.device == "cpu"
    assert model.user_ids_.tolist() == [1, 2, 3, 4, 5, 6]
    assert model.item_ids_.tolist() == sorted(CATALOGUE)
    # binarized at 3.5: user 1's low rating of item 13 is not a positive
    assert sorted(model.item_ids_[model.user_items_[0].indices].tolist()) == [10, 11, 12]


def test_fit_reports_what_it_did(csv_log, tmp_path, capsys):
    out = tmp_path / "pop.recae"
    rc, stdout, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "Popularity", "--out", out)
    assert rc == 0 and err == ""
    assert "Popularity" in stdout and "6 users × 8 items" in stdout and str(out) in stdout
    assert isinstance(recae.load(out), recae.Popularity)


def test_recommend_csv(model_file, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "1", "3", "-n", "3", "--format", "csv")
    assert rc == 0 and err == ""
    df = pd.read_csv(io.StringIO(out))
    assert list(df.columns) == ["user", "rank", "item", "score"]
    assert len(df) == 6
    check_ranking(df, 1, 3)
    check_ranking(df, 3, 3)


def test_recommend_json(model_file, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "2", "-n", "10", "--format", "json")
    assert rc == 0 and err == ""
    rows = json.loads(out)
    assert all(type(r["item"]) is int and type(r["user"]) is int for r in rows)  # ids stay numbers in JSON
    # user 2 has 3 positives, so only 5 of the 8 items are left: n is capped at 5
    check_ranking(pd.DataFrame(rows), 2, 5)


def test_recommend_table(model_file, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "4", "-n", "2")
    assert rc == 0 and err == ""
    lines = out.strip().splitlines()
    assert lines[0].split() == ["user", "rank", "item", "score"]
    assert len(lines) == 3
    parsed = [line.split() for line in lines[1:]]
    assert [p[1] for p in parsed] == ["1", "2"] and all(p[0] == "4" for p in parsed)
    assert {int(p[2]) for p in parsed} <= CATALOGUE - POSITIVES[4]


def test_recommend_matches_the_python_api(model_file, capsys):
    model = recae.load(model_file)
    ids, scores = model.recommend(5, n=4)
    rc, out, _ = run(capsys, "recommend", "--model-file", model_file, "--user", "5", "-n", "4", "--format", "json")
    rows = json.loads(out)
    assert [r["item"] for r in rows] == ids.tolist()
    assert [r["score"] for r in rows] == pytest.approx(scores.tolist(), abs=1e-6)


def test_recommend_history(model_file, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--history", "10, 13,999", "-n", "4",
                       "--format", "csv")
    assert rc == 0
    assert err.startswith("recae: warning: ") and "999" in err and len(err.splitlines()) == 1  # named, left out
    df = pd.read_csv(io.StringIO(out))
    assert (df["user"] == "(new)").all() and len(df) == 4
    assert df["rank"].tolist() == [1, 2, 3, 4] and df["score"].is_monotonic_decreasing
    assert set(df["item"]) <= CATALOGUE - {10, 13}  # the history is excluded; unknown 999 ignored
    expected, _ = recae.load(model_file).recommend_new([10, 13], n=4)
    assert df["item"].tolist() == expected.tolist()


def test_string_ids(tmp_path, capsys):
    path = tmp_path / "names.tsv"
    path.write_text("user\titem\nalice\tx\nalice\ty\nbob\ty\nbob\tz\ncarol\tx\n")
    out = tmp_path / "pop.recae"
    rc, _, _ = run(capsys, "fit", "--data", path, "--model", "popularity", "--min-user", "1", "--out", out)
    assert rc == 0
    rc, stdout, _ = run(capsys, "recommend", "--model-file", out, "--user", "carol", "--format", "json")
    assert rc == 0
    assert [r["item"] for r in json.loads(stdout)] == ["y", "z"]  # y: 2 users, z: 1; x already seen


def test_evaluate_synthetic(tmp_path, capsys):
    csv_out = tmp_path / "results.csv"
    rc, out, err = run(capsys, "evaluate", "--data", "synthetic", "--model", "popularity", "--k", "10", "50",
                       "--seeds", "1", "2", "--quiet", "--output", csv_out)
    assert rc == 0 and "Traceback" not in err
    assert out.splitlines()[0].startswith("Popularity() on synthetic log")
    assert "ndcg@10" in out and "truncated_recall@50" in out
    table = pd.read_csv(csv_out)
    assert set(table["seed"]) == {1, 2}
    ndcg = table[table["metric"] == "ndcg@10"]
    assert len(ndcg) == 2 and ((ndcg["mean"] > 0) & (ndcg["mean"] < 1)).all()
    assert (table["n_users"] > 0).all()


def test_evaluate_holdout_with_params(capsys, one_thread):
    rc, out, err = run(capsys, "evaluate", "--data", "synthetic", "--model", "ease", "--param", "l2=100",
                       "--param", "device=cpu", "--protocol", "holdout", "--k", "20", "-q")
    assert rc == 0, err
    assert out.startswith("EASE(l2=100, device='cpu') on synthetic log (seeded), protocol holdout")
    assert "ndcg@20" in out


def test_demo_without_data_uses_synthetic(tmp_path, capsys, one_thread):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = run(capsys, "demo", "--data-dir", empty)
    assert rc == 0 and "Traceback" not in err
    first = out.splitlines()[0]
    assert first.startswith("Dataset: synthetic")
    assert f"MovieLens 100K's u.data not found in {empty / 'ml-100k'};" in first  # where it looked
    assert "Popularity" in out and "EASE" in out and "NDCG@100" in out


def test_demo_on_movielens(capsys, one_thread):
    data_dir = require_data("ml-100k", "u.data").parent.parent
    rc, out, err = run(capsys, "demo", "--data-dir", data_dir)
    assert rc == 0 and "Traceback" not in err
    assert out.splitlines()[0] == f"Dataset: MovieLens 100K from {data_dir / 'ml-100k'} (943 users, 1682 items, " \
                                  "100000 ratings)"
    assert "Top 10 for training user" in out


def test_demo_runs_on_u_data_alone(tmp_path, capsys, one_thread):
    import shutil

    (tmp_path / "ml-100k").mkdir()
    shutil.copy(require_data("ml-100k", "u.data"), tmp_path / "ml-100k" / "u.data")  # no u.item beside it
    rc, out, err = run(capsys, "demo", "--data-dir", tmp_path)
    assert rc == 0 and "no u.item beside u.data, so no titles" in out.splitlines()[0]


@pytest.mark.parametrize("command", SUBCOMMANDS + [None])
def test_help(command, capsys):
    argv = [command, "--help"] if command else ["--help"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert ("recae " + command) in out.split("examples:", 1)[1] if command else "recae demo" in out


# ---------------------------------------------------------------------------------- errors
def test_unknown_model_name(csv_log, tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "mult-vae", "--out", tmp_path / "m")
    assert_clean_error(rc, out, err, "unknown model 'mult-vae'", "'ease'", "'popularity'")
    rc, out, err = run(capsys, "evaluate", "--data", "synthetic", "--model", "nope")
    assert_clean_error(rc, out, err, "unknown model 'nope'")
    assert "saved model file" not in err
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "best.recae", "--out", tmp_path / "m")
    assert_clean_error(rc, out, err, "--model takes a model name, not a saved model file", "_tune.md")


def test_unknown_user_id(model_file, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "99")
    assert_clean_error(rc, out, err, "unknown user id", "99")
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "alice")
    assert_clean_error(rc, out, err, "'alice'", "integers")
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--history", "ten")
    assert_clean_error(rc, out, err, "'ten'")
    rc, out, err = run(capsys, "recommend", "--model-file", model_file)
    assert_clean_error(rc, out, err, "--user")


def test_missing_files(tmp_path, csv_log, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", tmp_path / "nope.recae", "--user", "1")
    assert_clean_error(rc, out, err, "no model file", "nope.recae")
    rc, out, err = run(capsys, "recommend", "--model-file", csv_log, "--user", "1")
    assert_clean_error(rc, out, err, "not a recae model")
    rc, out, err = run(capsys, "fit", "--data", tmp_path / "missing.csv", "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "missing.csv")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", blocker / "dir" / "m.recae")
    assert_clean_error(rc, out, err, "cannot be made", "is a file")  # a missing folder is made, a file is not one


def test_bad_param(csv_log, tmp_path, capsys):
    out_file = tmp_path / "m.recae"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--param", "lambda=3", "--out", out_file)
    assert_clean_error(rc, out, err, "invalid parameter 'lambda' for EASE", "'l2'")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--param", "l2", "--out", out_file)
    assert_clean_error(rc, out, err, "NAME=VALUE")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--param", "l2=abc", "--out", out_file)
    assert_clean_error(rc, out, err, "l2", "'abc'")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--param", "dtype=float16", "--out", out_file)
    assert_clean_error(rc, out, err, "dtype")
    assert not out_file.exists()


def test_bad_column_names(csv_log, tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", csv_log, "--out", tmp_path / "m.recae")  # default columns user/item
    assert_clean_error(rc, out, err, "'user'", "uid")


def test_console_script_version():
    exe = Path(sys.executable).with_name("recae")
    exe = str(exe) if exe.exists() else shutil.which("recae")
    assert exe, "the recae console script is not installed (pip install -e .)"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"recae {recae.__version__}"


def test_unknown_dataset_name(tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", "ml-1k", "--out", tmp_path / "m")
    assert_clean_error(rc, out, err, "unknown dataset 'ml-1k'", "'ml-100k'", "'synthetic'")


def test_evaluate_temporal_runs_once_whatever_the_seeds(tmp_path, capsys, one_thread):
    csv_out = tmp_path / "temporal.csv"
    rc, out, err = run(capsys, "evaluate", "--data", "synthetic", "--model", "popularity", "--protocol", "temporal",
                       "--seeds", "1", "2", "3", "--k", "10", "-q", "--output", csv_out)
    assert rc == 0, err
    assert "protocol temporal" in out
    assert set(pd.read_csv(csv_out)["seed"]) == {1}  # the split has no randomness: one run


# ---------------------------------------------------------------------------------- first-hour parity
def test_recommend_batch_with_unknown_users(model_file, capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "1,99,3", "-n", "2", "--format", "csv")
    assert_clean_error(rc, out, err, "unknown user id(s) [99]", "--skip-unknown")
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "1,99", "3", "alice", "-n", "2",
                       "--skip-unknown", "--format", "csv")
    assert rc == 0
    df = pd.read_csv(io.StringIO(out))
    check_ranking(df, 1, 2)
    check_ranking(df, 3, 2)
    assert err == "recae: warning: --skip-unknown: 2 unknown user id(s) left out: 99, alice\n"
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "99", "--skip-unknown")
    assert rc == 2 and "every --user id was unknown" in err


def test_recommend_a_rated_history(csv_log, tmp_path, capsys):
    out_file = tmp_path / "autorec.recae"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "autorec", "--out", out_file)
    assert_clean_error(rc, out, err, "AutoRec trains on explicit ratings: add --explicit")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "autorec", "--explicit", "--param",
                       "epochs=2", "--param", "device=cpu", "-q", "--out", out_file)
    assert rc == 0, err
    rc, out, err = run(capsys, "recommend", "--model-file", out_file, "--history", "10:5,13:1.5", "-n", "3",
                       "--format", "json")
    assert rc == 0, err
    rows = json.loads(out)
    expected, _ = recae.load(out_file).recommend_new({10: 5.0, 13: 1.5}, n=3)
    assert [r["item"] for r in rows] == expected.tolist()
    rc, out, err = run(capsys, "recommend", "--model-file", out_file, "--history", "10:5,13")
    assert_clean_error(rc, out, err, "not a mix")
    rc, out, err = run(capsys, "recommend", "--model-file", out_file, "--history", "10:five")
    assert_clean_error(rc, out, err, "must be a number")
    rc, out, err = run(capsys, "recommend", "--model-file", out_file, "--history", "10,13")
    assert_clean_error(rc, out, err, "AutoRec folds in ratings: give --history as item:rating pairs, e.g. 10:5,13:5")


def test_fit_validation_patience_checkpoints_and_resume(tmp_path, capsys, caplog, one_thread):
    ckpt, out_file = tmp_path / "ckpt", tmp_path / "dae.recae"
    common = ["fit", "--data", "synthetic", "--model", "multdae", "--valid", "0.1", "--checkpoint-dir", ckpt,
              "--threads", "1", "-q", "--out", out_file]
    rc, out, err = run(capsys, *common, "--param", "epochs=2", "--patience", "3")
    assert rc == 0, err
    assert "--valid 0.1: 160 users held out for validation, 1,448 left for training" in out
    assert "1448 users" in out and "; 2 epochs, best epoch" in out
    model = recae.load(out_file)
    assert model.patience == 3 and model.user_ids_.size == 1448 and (ckpt / "checkpoint.safetensors").exists()
    held_out = min(set(range(1608)) - set(model.user_ids_.tolist()))
    rc, out, err = run(capsys, "recommend", "--model-file", out_file, "--user", held_out)
    assert_clean_error(rc, out, err, "recae fit --valid 0.1: 160 users held out for validation are not in the model")
    rc, out, err = run(capsys, *common, "--param", "epochs=3")  # without --resume it would start over on it
    assert_clean_error(rc, out, err, f"--checkpoint-dir {str(ckpt)!r} holds a checkpoint: add --resume")
    with caplog.at_level("INFO", logger="recae.train"):
        rc, out, err = run(capsys, *common, "--param", "epochs=3", "--resume")
    assert rc == 0, err
    assert "; 3 epochs, best epoch" in out and "after epoch 2" in caplog.text  # epochs 1-2 from the checkpoint


def test_fit_training_options_are_refused_where_they_do_not_apply(csv_log, tmp_path, capsys):
    out_file = tmp_path / "m.recae"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--patience", "2", "--out", out_file)
    assert_clean_error(rc, out, err, "--patience applies to models trained in epochs", "not EASE")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "multdae", "--resume", "--out", out_file)
    assert_clean_error(rc, out, err, "--resume", "--checkpoint-dir")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--valid", "0.2", "--out", out_file)
    assert rc == 0 and err == "recae: warning: --valid ignored: EASE does not validate while fitting; all users are used\n"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--threads", "0", "--out", out_file)
    assert_clean_error(rc, out, err, "--threads must be a positive integer")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", out_file)  # a model file: replaced
    assert rc == 0, err
    other = tmp_path / "notes.csv"
    other.write_text("user,item\n")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", other)
    assert_clean_error(rc, out, err, f"--out {str(other)!r} exists and is not a recae model file")
    assert other.read_text() == "user,item\n"
    placeholder = tmp_path / "placeholder.recae"  # e.g. made by mktemp: empty, so nothing is lost
    placeholder.write_text("")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", placeholder)
    assert rc == 0 and recae.load(placeholder).is_fitted, err
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "multdae", "--param", "epochs=1",
                       "--checkpoint-dir", tmp_path / "none_yet", "--resume", "-q", "--out", out_file)
    assert rc == 0 and "--resume: no checkpoint in" in err and "training starts at epoch 1" in err


def test_ctrl_c_during_fit(csv_log, tmp_path, capsys, monkeypatch):
    def interrupted_fit(self, data, valid=None, callbacks=(), **kwargs):
        for cb in callbacks:  # two epochs finish, then Ctrl-C
            cb(self, 1, {"epoch": 1, "loss": 0.9})
            cb(self, 2, {"epoch": 2, "loss": 0.8})
        raise KeyboardInterrupt

    monkeypatch.setattr(recae.MultDAE, "fit", interrupted_fit)
    out_file = tmp_path / "m.recae"
    args = ["fit", "--data", csv_log, *FIT_ARGS, "--model", "multdae", "-q", "--out", out_file]
    rc, out, err = run(capsys, *args, "--checkpoint-dir", tmp_path / "ck")
    assert rc == 130 and not out_file.exists()
    assert "interrupted after epoch 2" in err and "--resume" in err and str(tmp_path / "ck") in err
    rc, out, err = run(capsys, *args)
    assert rc == 130 and "nothing saved" in err and "with --checkpoint-dir DIR" in err

    def interrupted_at_once(self, data, valid=None, callbacks=(), **kwargs):
        raise KeyboardInterrupt  # a resumed fit, stopped before it ends an epoch of its own

    monkeypatch.setattr(recae.MultDAE, "fit", interrupted_at_once)
    (tmp_path / "ck2").mkdir()
    (tmp_path / "ck2" / "checkpoint.safetensors").write_bytes(b"kept")
    rc, out, err = run(capsys, *args, "--checkpoint-dir", tmp_path / "ck2", "--resume")
    assert rc == 130 and "no checkpoint yet" not in err and "continues it: run the same command with --resume" in err


def test_duplicates_option_and_log_messages(tmp_path, capsys):
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\na,x\na,x\na,x\na,y\nb,x\nb,y\nc,x\n")
    rc, out, err = run(capsys, "fit", "--data", path, "--min-user", "1", "--model", "popularity", "--out", tmp_path / "p")
    assert rc == 0 and err == ""
    assert "2 repeated (user, item) rows merged into 5 entries (1.0 per pair; --duplicates sum counts them)" in out
    assert set(recae.load(tmp_path / "p").user_items_.data) == {1.0}
    rc, out, err = run(capsys, "fit", "--data", path, "--min-user", "1", "--duplicates", "sum", "--model", "popularity",
                       "--out", tmp_path / "p")
    assert rc == 0 and "(--duplicates sum)" in out
    assert recae.load(tmp_path / "p").user_items_.data.max() == 3.0
    rc, out, err = run(capsys, "fit", "--data", path, "--min-user", "2", "--model", "popularity", "--out", tmp_path / "p")
    assert rc == 0 and "--min-user 2 dropped 1 of 3 users, 0 of 2 items and 1 of 5 entries" in out


def test_error_hints_use_command_line_syntax(capsys):
    from recae.commands.syntax import cli_syntax

    assert cli_syntax("singular; use a larger l2 or dtype='float64'", "fit") == \
        "singular; use a larger l2 or --param dtype=float64"
    assert cli_syntax("pass data_dir=<that directory>, or call with download=True", "fit") == \
        "pass --data-dir <that directory>, or call with --download"
    assert cli_syntax("drop rare items with Interactions.filter(min_item=...), or LinearAE(rank=...)", "fit") == \
        "drop rare items with --min-item N, or --model linearae --param rank=..."
    assert cli_syntax("Pass user=<column name>.") == "Pass --user-col <column name>."
    assert cli_syntax("after filter(min_user=5, min_item=1); lower min_user (now 5)") == \
        "after --min-user 5 --min-item 1; lower --min-user (now 5)"
    assert cli_syntax("pass device='cpu' to load it", "recommend") == "pass --device cpu to load it"
    assert cli_syntax("pass device='cpu' to load it", "fit") == "pass --param device=cpu to load it"
    assert cli_syntax("got EASE(l2=100, device='cpu'); pass unknown='ignore'") == \
        "got EASE(l2=100, device='cpu'); pass unknown='ignore'"  # reprs and unknown names stay


def test_data_dir_hint_in_cli_syntax(tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", "ml-1m", "--data-dir", tmp_path, "--out", tmp_path / "m.recae")
    assert rc == 2 and "--data-dir <that directory>" in err and "data_dir=" not in err and "--download" in err


def test_history_ids_with_a_colon_are_taken_whole_where_the_model_knows_them():
    import numpy as np

    from recae.commands.recommend import parse_history

    known = np.array(["urn:p:1", "urn:p:2", "sku"], dtype=object)
    assert parse_history("urn:p:1,urn:p:2", known) == ["urn:p:1", "urn:p:2"]
    assert parse_history("urn:p:1:5,sku:3", known) == {"urn:p:1": 5.0, "sku": 3.0}
    assert parse_history("50:5,181:3", np.array([50, 181])) == {50: 5.0, 181: 3.0}


def test_options_are_whole_words_and_usage_errors_one_line(capsys, tmp_path):
    for argv, line in ((["demo", "--data", "ml-1m"],  # not a prefix of --data-dir
                        "recae: error: unrecognized arguments: --data ml-1m (see recae demo --help)"),
                       (["recommend", "--model-file", "m.recae", "-n", "abc"],
                        "recae: error: argument -n: invalid int value: 'abc' (see recae recommend --help)")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        out, err = capsys.readouterr()
        assert exc.value.code == 2 and err.strip().splitlines() == [line]
    rc, out, err = run(capsys, "demo", "--data-dir", tmp_path / "absent")
    assert_clean_error(rc, out, err, "--data-dir", "is not a folder")


def test_checks_that_need_no_fit_come_first(csv_log, capsys, tmp_path):
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", csv_log)
    assert_clean_error(rc, out, err, "is the --data log itself")
    assert csv_log.read_text().startswith("uid,iid")  # the log is untouched
    rc, out, err = run(capsys, "evaluate", "--data", csv_log, *FIT_ARGS, "--timestamp-col", "ts", "--protocol",
                       "temporal", "--seeds", "1", "2", "--k", "2", "--model", "popularity", "-q")
    assert rc == 0 and "the temporal split has no randomness, so it runs once" in err


def test_user_ids_given_twice_are_both_used(model_file, capsys):
    rc, out, _ = run(capsys, "recommend", "--model-file", model_file, "--user", "1", "--user", "2", "-n", "1",
                     "--format", "csv")
    assert rc == 0 and out.splitlines()[1].startswith("1,") and out.splitlines()[2].startswith("2,")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    import os

    from recae.atomic import atomic_write_text

    path = tmp_path / "results.csv"
    path.write_text("old contents\n")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(recae.RecaeError, match="No space left on device"):
        atomic_write_text(path, "new contents\n" * 1000)
    assert path.read_text() == "old contents\n" and [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_serve_refuses_an_address_it_cannot_listen_on(model_file, capsys):
    import socket

    pytest.importorskip("fastapi")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        rc, out, err = run(capsys, "serve", model_file, "--no-journal", "--port", port)
    assert_clean_error(rc, out, err, f"cannot listen on 127.0.0.1:{port}", "pick another --port")
    # a numeric address of no interface here (TEST-NET-1): no name lookup, so no network involved
    rc, out, err = run(capsys, "serve", model_file, "--no-journal", "--host", "192.0.2.1")
    assert_clean_error(rc, out, err, "cannot listen on 192.0.2.1:8000", "Cannot assign requested address")


def test_serve_refuses_a_journal_that_is_not_one_before_serving(model_file, tmp_path, capsys):
    pytest.importorskip("fastapi")
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database, " * 100)
    rc, out, err = run(capsys, "serve", model_file, "--journal", not_sqlite, "--port", "0")
    assert_clean_error(rc, out, err, "is not a usable recae journal")
    assert "serving" not in out and not_sqlite.read_text().startswith("not a database")
    import sqlite3

    from recae.serve import Journal

    damaged = tmp_path / "damaged.journal"
    j = Journal(damaged)
    j.append({"user": 1, "items": [2], "ratings": None})
    j.close()
    with sqlite3.connect(damaged) as db:
        db.execute("UPDATE events SET crc = crc + 1")
    rc, out, err = run(capsys, "serve", model_file, "--journal", damaged, "--port", "0")
    assert_clean_error(rc, out, err, "record 1 fails its CRC-32 check")
    assert "serving" not in out  # before: printed, then the server died replaying the journal
    assert "--salvage-journal" in err  # the way to keep the records that pass their checks
    rc, out, err = run(capsys, "serve", model_file, "--no-journal", "--salvage-journal", "--port", "0")
    assert_clean_error(rc, out, err, "--salvage-journal rewrites the journal; it contradicts --no-journal")


def test_errors_name_the_flags_typed(csv_log, capsys, tmp_path):
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--min-user", "0", "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "--min-user must be an integer in [1, inf]; got 0")
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--binarize", "nan", "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "--binarize must be a finite number; got float nan")


def test_every_warning_is_one_line_and_a_third_party_one_names_its_package(csv_log, tmp_path, capsys, monkeypatch):
    import warnings

    from recae.models import EASE

    def noisy_fit(self, data, *args, **kwargs):
        warnings.warn_explicit("a library's note\n  over two lines", UserWarning,
                               "/venv/lib/python3.11/site-packages/elsa/elsa.py", 12)
        return original(self, data, *args, **kwargs)

    original = EASE.fit
    monkeypatch.setattr(EASE, "fit", noisy_fit)
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", tmp_path / "m.recae")
    assert rc == 0 and err == "recae: warning: a library's note over two lines (UserWarning from elsa)\n"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--sep", "", "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "--sep must be a non-empty string")


def test_errors_name_the_option_the_user_typed(csv_log, tmp_path, capsys):
    out_file = tmp_path / "m.recae"
    cases = [(["fit", "--model", "multdae", "--param", "epochs=0"], "--param epochs must be a positive integer; got 0"),
             (["fit", "--model", "multdae", "--valid", "2"], "--valid as a fraction must be in (0, 1); got 2.0"),
             (["evaluate", "--heldout", "0.7"], "--heldout as a fraction must be in (0, 0.5); got 0.7"),
             (["evaluate", "--k", "0"], "--k must be positive integers; got 0"),
             (["evaluate"], "--heldout 0.1 of 6 users gives 0 users per held-out part")]
    for argv, message in cases:
        tail = ["--out", out_file] if argv[0] == "fit" else []
        rc, out, err = run(capsys, argv[0], "--data", csv_log, *FIT_ARGS, *argv[1:], *tail)
        assert_clean_error(rc, out, err, message)
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, as for every usage error
        main(["evaluate", "--data", str(csv_log), "--metrics", "recall@10"])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and err == "recae: error: unrecognized arguments: --metrics recall@10 (see recae evaluate --help)\n"


def test_patience_without_validation_says_it_is_ignored(csv_log, tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "multdae", "--param", "epochs=1",
                       "--patience", "2", "--out", tmp_path / "m.recae")
    assert rc == 0 and "recae: warning: --patience 2 ignored: early stopping needs validation users" in err
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "multdae", "--valid", "0.5",
                       "--patience", "0", "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "--patience must be a positive integer")


def test_a_wrong_separator_or_a_missing_header_is_named(tmp_path, capsys):
    piped, tabbed, bare = tmp_path / "shop.txt", tmp_path / "t.csv", tmp_path / "u.csv"
    piped.write_text("user|item\na|x\nb|y\n")
    tabbed.write_text("user\titem\na\tx\nb\ty\n")
    bare.write_text("196,242\n186,302\n")
    rc, out, err = run(capsys, "fit", "--data", piped, "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "the file is separated by something else: pass --sep |.")
    rc, out, err = run(capsys, "fit", "--data", tabbed, "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "pass --sep tab.")
    rc, out, err = run(capsys, "fit", "--data", tabbed, "--sep", "tab", "--min-user", "1", "--model", "popularity",
                       "--out", tmp_path / "m.recae")
    assert rc == 0 and "2 users × 2 items" in out, err
    rc, out, err = run(capsys, "fit", "--data", bare, "--out", tmp_path / "m.recae")
    assert_clean_error(rc, out, err, "reads as data: the file seems to have no header row")


def test_fit_auto_says_what_it_picked_and_a_sparse_setting_of_yours_wins(csv_log, tmp_path, capsys):
    out_file = tmp_path / "auto.recae"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "auto", "--out", out_file)
    assert rc == 0, err
    assert "--model auto: ease for " in out and "(dense EASE fits memory_budget_gb=8)" in out
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "auto", "--param", "density=0.5",
                       "--out", out_file)
    assert rc == 0, err
    assert "--model auto: sparseease density=0.5 for" in out and "but --param density is SparseEASE's" in out
    model = recae.load(out_file)
    assert type(model).__name__ == "SparseEASE" and model.density == 0.5
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--model", "auto", "--param", "solver=scipy",
                       "--out", out_file)
    assert rc == 0 and "--model auto: sparseease solver=scipy for" in out, err  # a text setting is shown as given


def test_log_options_given_with_a_dataset_name_are_named_and_encoding_reads_a_latin1_log(tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", "synthetic", "--rating-col", "stars", "--sep", ";", "-q",
                       "--model", "popularity", "--out", tmp_path / "p.recae")
    assert rc == 0 and "recae: warning: --rating-col, --sep ignored: they apply to log files, not the dataset " \
                       "'synthetic'" in err
    rc, out, err = run(capsys, "fit", "--data", "synthetic", "--data-dir", tmp_path, "--download", "-q",
                       "--model", "popularity", "--out", tmp_path / "p.recae")
    assert rc == 0 and "recae: warning: --data-dir and --download ignored: they apply to MovieLens datasets, not " \
                       "the generated dataset 'synthetic'" in err
    log = tmp_path / "latin.csv"
    log.write_bytes("user,item\nJosé,x\nJosé,y\nb,x\n".encode("latin-1"))
    rc, out, err = run(capsys, "fit", "--data", log, "--min-user", "1", "--model", "popularity", "--out", tmp_path / "p")
    assert_clean_error(rc, out, err, "is not valid utf-8 text", "pass --encoding latin-1")
    rc, out, err = run(capsys, "fit", "--data", log, "--encoding", "latin-1", "--min-user", "1", "--model", "popularity",
                       "--out", tmp_path / "p.recae")
    assert rc == 0 and "2 users × 2 items" in out, err
    assert "José" in recae.load(tmp_path / "p.recae").user_ids_.tolist()


def test_verbose_after_the_command_and_option_names_in_messages(csv_log, model_file, tmp_path, capsys):
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", tmp_path / "m.recae", "-v")
    assert rc == 0, err
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--user", "1", "-n", "0")
    assert_clean_error(rc, out, err, "-n must be a positive integer; got 0")
    rc, out, err = run(capsys, "demo", "--seed", "-1")
    assert_clean_error(rc, out, err, "--seed must be a non-negative integer")
    assert "Generator" not in err


def test_fit_makes_the_folder_of_its_out_file_as_tune_does(csv_log, tmp_path, capsys):
    out_file = tmp_path / "models" / "v1" / "m.recae"
    rc, out, err = run(capsys, "fit", "--data", csv_log, *FIT_ARGS, "--out", out_file)
    assert rc == 0 and recae.load(out_file).is_fitted, err


def test_rated_history_on_a_model_of_positives_warns_and_a_user_with_nothing_left_is_named(model_file, tmp_path,
                                                                                            capsys):
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--history", "10:5,13:1", "-n", "3")
    assert rc == 0 and "ranks from positives: each item:value weighs its item by the value" in err
    rc, out, err = run(capsys, "recommend", "--model-file", model_file, "--history", "10:1,13:1", "-n", "3")
    assert rc == 0 and "weighs" not in err  # ones are clicks: nothing to warn about
    frame = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"]})
    frame.to_csv(tmp_path / "two.csv", index=False)
    rc, out, err = run(capsys, "fit", "--data", tmp_path / "two.csv", "--model", "popularity", "--min-user", "1",
                       "-q", "--out", tmp_path / "two.recae")
    assert rc == 0, err
    rc, out, err = run(capsys, "recommend", "--model-file", tmp_path / "two.recae", "--user", "u1")
    assert_clean_error(rc, out, err, "user(s) u1 interacted with every item of the model: nothing left")  # not "unknown"
    rc, out, err = run(capsys, "recommend", "--model-file", tmp_path / "two.recae", "--user", "u1", "u2")
    assert rc == 0 and "user(s) u1 interacted with every item" in err and "u2" in out


def test_sigterm_during_a_command_runs_its_cleanup(tmp_path):
    """kill's default signal: before, Python ended at once and a save's full-size temporary file stayed."""
    import textwrap

    script = textwrap.dedent(f'''
        import os, signal, time
        import recae.atomic, recae.cli, recae.commands.demo

        def command(args):
            with recae.atomic._replacing({str(tmp_path / "out.txt")!r}, OSError, "write") as tmp:
                open(tmp, "w").write("half a model")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
            return 0

        recae.commands.demo.cmd_demo = command
        raise SystemExit(recae.cli.main(["demo"]))
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither the temporary file nor a torn out.txt
