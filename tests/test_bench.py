"""recae bench: trial sampling, the runner on a planted log, the report files and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recae import DataError, DataWarning, strong_generalization_split
from recae.bench import DATASETS, SPACES, BenchResult, console_table, load_dataset, make_split, run_bench, seed_list, trials, write
from recae.bench.memory import PeakRSS
from recae.bench.protocols import positives, split_seeds
from recae.bench.spaces import check_models
from recae.cli import main
from recae.datasets import DATASET_NAMES, synthetic


def test_trials_start_with_the_defaults_and_are_distinct_grid_points():
    for name, space in SPACES.items():
        got = trials(name, 5)
        assert got[0] == dict(space.fixed), name
        expected_len = min(5, len(space.settings()))  # the defaults are one of the grid points
        assert len(got) == expected_len, name
        keys = [json.dumps(t, sort_keys=True) for t in got]
        assert len(set(keys)) == len(keys), name
        for t in got[1:]:
            assert all(t[k] in space.grid[k] for k in t), (name, t)
    assert trials("als", 4) == trials("als", 4)  # seeded
    assert trials("als", 1) == [{}]


def test_the_als_search_covers_the_reference_setting():
    grid = SPACES["als"].grid
    assert 256 in grid["factors"] and 50.0 in grid["regularization"] and 5.0 in grid["alpha"]
    from recae.models import ImplicitALS

    p = ImplicitALS().get_params()
    assert (p["factors"], p["regularization"], p["alpha"]) == (256, 50.0, 5.0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_budget_must_be_a_positive_integer(bad):
    with pytest.raises(DataError, match="budget"):
        trials("ease", bad)


def test_seed_list():
    assert seed_list(3) == [98765, 1, 2]
    assert seed_list([7, 8]) == [7, 8]
    for bad in (0, [], [1.5], "2"):
        with pytest.raises(DataError, match="seeds"):
            seed_list(bad)


def test_unknown_models_are_named():
    with pytest.raises(DataError, match="'svd'"):
        check_models(["ease", "svd"])
    with pytest.raises(DataError, match="blend"):
        check_models(["blend", "als"])
    assert check_models(["EASE", "ease", "als"]) == ["ease", "als"]


def test_peak_rss_sees_an_allocation():
    with PeakRSS(interval=0.01) as mem:
        block = np.ones(64 * 2 ** 20 // 8)  # 64 MiB
        block[::512] += 1
    assert mem.peak > 64 * 2 ** 20


@pytest.fixture(scope="module")
def result(planted):
    return run_bench(planted, "strong", ["popularity", "ease", "als", "multdae", "blend"], seeds=2, budget=2,
                     max_epochs=3, threads=1, show_progress=False)


def test_run_bench_rows_trials_and_summary(result):
    assert isinstance(result, BenchResult)
    assert [(r["seed"], r["model"]) for r in result.rows] == [
        (s, m) for s in (98765, 1) for m in ("popularity", "ease", "als", "multdae", "blend")]
    # the search runs on the first split only: popularity has one setting, the others two
    assert [t["model"] for t in result.trials] == ["popularity", "ease", "ease", "als", "als", "multdae", "multdae"]
    assert all(t["seed"] == 98765 for t in result.trials)
    for name in ("ease", "als", "multdae"):
        tried = [t for t in result.trials if t["model"] == name]
        best = max(tried, key=lambda t: t["valid_ndcg@100"])
        assert result.rows[[r["model"] for r in result.rows].index(name)]["params"] == best["params"]
        second = [r for r in result.rows if r["model"] == name and r["seed"] == 1][0]
        assert second["params"] == best["params"]  # refitted with the chosen setting
    multdae = [r for r in result.rows if r["model"] == "multdae"]
    assert all(r["best_epoch"] <= 3 for r in multdae)
    for r in result.rows:
        assert 0 <= r["ndcg@100"] <= 1 and r["ndcg@100_se"] > 0 and r["users_per_second"] > 0
        assert r["peak_rss_mib"] > 10 and {"recall@20", "recall@50"} <= set(r)
    summary = {s["model"]: s for s in result.summary()}
    # on a planted log every learned model beats popularity
    assert summary["ease"]["ndcg@100"] > summary["popularity"]["ndcg@100"] + 0.05
    assert summary["als"]["vs_best_mf"] == pytest.approx(1.0)
    assert summary["ease"]["vs_best_mf"] == pytest.approx(summary["ease"]["ndcg@100"] / summary["als"]["ndcg@100"])
    blend = [r for r in result.rows if r["model"] == "blend"][0]
    assert blend["params"]["members"] == ["ease", "multdae"]
    assert sum(blend["params"]["weights"]) == pytest.approx(1.0, abs=1e-3)


def test_report_files(result, tmp_path):
    result.info.update(dataset="planted", seconds=1.0)
    paths = write(result, tmp_path, "run", command="recae bench --dataset planted")
    data = json.loads(paths["json"].read_text())
    assert data["env"]["command"] == "recae bench --dataset planted"
    assert {"machine", "date", "versions"} <= set(data["env"])
    assert len(data["rows"]) == 10 and len(data["summary"]) == 5
    assert "recall@20" in data["rows"][0] and data["info"]["metrics"]["recall@k"].startswith("truncated recall")
    md = paths["md"].read_text()
    assert "recae bench --dataset planted" in md and "| EASE |" in md and "run.png" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = console_table(result)
    assert table.splitlines()[0].startswith("model") and len(table.splitlines()) == 2 + 5 + 1  # + the legend line
    assert "| trunc. Recall@20 ± se |" in md and "| split std |" in md  # the Markdown keeps every column


def test_temporal_protocol_runs_one_split(planted):
    stamped = synthetic(n_users=200, n_items=80, random_state=5)
    if stamped.timestamps is None:
        pytest.skip("synthetic logs carry no timestamps")
    r = run_bench(stamped, "temporal", ["popularity", "ease"], seeds=3, budget=1, show_progress=False)
    assert r.info["seeds"] == [98765] and len(r.rows) == 2


def test_cli_bench_writes_results(tmp_path, capsys):
    code = main(["bench", "--dataset", "synthetic", "--models", "popularity", "ease", "--seeds", "1", "--budget", "2",
                 "--out", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert code == 0
    assert "EASE" in out and "Popularity" in out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bench_synthetic_strong.json", "bench_synthetic_strong.md", "bench_synthetic_strong.png"]
    data = json.loads((tmp_path / "bench_synthetic_strong.json").read_text())
    assert data["env"]["command"].startswith("recae bench --dataset synthetic")


def test_cli_bench_rejects_unknown_model(capsys):
    assert main(["bench", "--dataset", "synthetic", "--models", "svd", "-q"]) == 2
    assert "unknown model" in capsys.readouterr().err


@pytest.mark.parametrize("args, match", [(["--budget", "2", "--budget-seconds", "5"], "not both"),
                                         (["--budget-seconds", "inf"], "positive, finite number"),
                                         (["--name", "a/b"], "--name is the results' file stem, without a folder")])
def test_cli_bench_budget_is_trials_or_seconds(capsys, args, match):
    assert main(["bench", "--dataset", "synthetic", "--models", "ease", "-q", *args]) == 2
    printed = capsys.readouterr()
    assert match in printed.err and "Benchmarking on" not in printed.out  # refused before the data loads


def test_a_saved_run_renders_again_unchanged(result, tmp_path):
    from recae.bench import load_result

    result.info.update(dataset="planted", seconds=1.0)
    first = write(result, tmp_path / "a", "run", command="recae bench x")
    loaded, env = load_result(first["json"])
    second = write(loaded, tmp_path / "b", "run", command="ignored", env=env)
    assert second["md"].read_text() == first["md"].read_text()
    tuned = {s["model"]: s["tune_seconds"] for s in loaded.summary()}
    assert tuned["ease"] == max(r["tune_seconds"] for r in result.rows if r["model"] == "ease")


def test_bench_and_cli_share_the_dataset_names():
    from recae import cli

    assert DATASETS == cli.DATASETS == DATASET_NAMES


def test_make_split_defaults_hold_out_validation_and_parameters_override_them(planted):
    data = positives(planted)
    strong = make_split(data, "strong", 1)
    assert strong.protocol == "strong"
    same = strong_generalization_split(data, 0.1, random_state=1)
    assert (strong.test_target.matrix != same.test_target.matrix).nnz == 0
    wider = make_split(data, "strong", 1, heldout=0.2)
    assert wider.test_fold_in.n_users > strong.test_fold_in.n_users
    holdout = make_split(data, "holdout", 1)
    assert holdout.valid is not None
    assert make_split(data, "holdout", 1, valid_size=0.0).valid is None
    temporal = make_split(data, "temporal", 1)
    assert temporal.valid is not None
    assert make_split(data, "temporal", 1, valid_k=0).valid is None
    with pytest.raises(DataError, match="protocol must be one of"):
        make_split(data, "kfold", 1)


def test_split_seeds():
    assert split_seeds("strong", [98765, 1, 2]) == [98765, 1, 2]
    assert split_seeds("temporal", [98765, 1, 2]) == [98765]


def test_load_dataset_gives_positives_of_the_named_log(tmp_path):
    # a generated log is shaped like a log of positives: every entry is one, as `recae bench --binarize 0` reads it
    data = load_dataset("synthetic")
    assert (data.n_users, data.n_items) == (2000, 1000) and data.nnz == 40_000
    assert not data.has_ratings and set(np.unique(data.matrix.data)) == {1.0}
    log = tmp_path / "log.csv"
    log.write_text("user,item\n" + "".join(f"{u},{i}\n" for u in range(8) for i in range(u)))  # user u: u items
    pos = load_dataset(str(log))
    assert not pos.has_ratings and set(np.unique(pos.matrix.data)) == {1.0}
    assert sorted(pos.user_ids.tolist()) == [5, 6, 7]  # users with at least 5 positives
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("ml-1k")


def fake_result(models) -> BenchResult:
    """A BenchResult with hand-made rows, for the report's layout (no fitting)."""
    rows = []
    for seed in (98765, 1):
        for name, label, ndcg in models:
            row = {"seed": seed, "model": name, "label": label, "params": {}, "valid_ndcg@100": ndcg, "ndcg@100": ndcg,
                   "ndcg@100_se": 0.007, "fit_seconds": 12.5, "tune_seconds": 30.0, "users_per_second": 12345.0,
                   "peak_rss_mib": 2345.0, "n_test_users": 604}
            for k in (20, 50):
                row[f"recall@{k}"], row[f"recall@{k}_se"] = ndcg * 0.9, 0.006
            rows.append(row)
    info = {"protocol": "strong", "seeds": [98765, 1], "budget": 2, "tune": "first", "models": [m[0] for m in models],
            "users": 6040, "items": 3706, "nnz": 575281, "max_epochs": None, "k": [20, 50, 100], "torch_threads": 1,
            "dataset": "MovieLens 1M", "seconds": 100.0}
    return BenchResult(rows=rows, trials=[], info=info)


ALL_MODELS = [("popularity", "Popularity", 0.213), ("bpr", "implicit BPR", 0.383), ("als", "implicit ALS", 0.427),
              ("ease", "EASE", 0.420), ("edlae", "EDLAE (EASE + dropout)", 0.422),
              ("linearae", "LinearAE (Blend member)", 0.351), ("multdae", "MultDAE", 0.414),
              ("multvae", "MultVAE", 0.408), ("cdae", "CDAE", 0.402), ("recvae", "RecVAE", 0.417),
              ("blend", "Blend (EDLAE + LinearAE + MultDAE + MultVAE + CDAE + RecVAE)", 0.436)]


def test_console_table_fits_100_columns():
    table = console_table(fake_result(ALL_MODELS))
    assert max(len(line) for line in table.splitlines()) <= 100
    assert table.splitlines()[0].split() == ["model", "NDCG@100", "±", "se", "×", "MF", "tR@20", "tR@50", "fit", "s",
                                             "users/s", "RSS", "MiB"]
    assert "Blend (EDLAE + LinearAE" in table and "1.021" in table  # the Blend's label cut to fit; 0.436 / 0.427
    assert "truncated recall" in table.splitlines()[-1]


def test_without_an_mf_model_the_ratio_is_a_dash(tmp_path):
    result = fake_result([("ease", "EASE", 0.42), ("multdae", "MultDAE", 0.41)])
    assert "nan" not in console_table(result)
    assert [line.split()[4] for line in console_table(result).splitlines()[2:4]] == ["–", "–"]
    md = write(result, tmp_path, "run", command="x")["md"].read_text()
    assert "| – |" in md.split("## Chosen")[0]


def test_a_missing_matplotlib_is_named(tmp_path, monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with caplog.at_level("WARNING", logger="recae.bench"):
        paths = write(fake_result(ALL_MODELS[:3]), tmp_path, "run", command="x")
    assert "png" not in paths and sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.md"]
    assert "matplotlib is not installed" in caplog.text and "pip install 'recae[bench]'" in caplog.text


def test_the_plot_has_a_legend_and_standard_errors(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from recae.bench import report

    seen = {}
    real_savefig = plt.Figure.savefig

    def keep(fig, path, *args, **kwargs):
        ax = fig.axes[0]
        seen["legend"] = [t.get_text() for t in ax.get_legend().get_texts()]
        seen["texts"] = [t.get_text() for t in ax.texts]  # no per-point labels to overlap
        seen["bars"] = [c for c in ax.containers]
        return real_savefig(fig, path, *args, **kwargs)

    plt.Figure.savefig, saved = keep, plt.Figure.savefig
    try:
        report.plot(fake_result(ALL_MODELS), tmp_path / "p.png")
    finally:
        plt.Figure.savefig = saved
    assert seen["legend"][:4] == ["Popularity", "implicit BPR", "implicit ALS", "EASE"] and len(seen["legend"]) == 11
    assert seen["texts"] == []
    segments = seen["bars"][0].lines[2][0].get_segments()  # the error bar of the first point
    assert segments[0][:, 1].tolist() == pytest.approx([0.213 - 0.007, 0.213 + 0.007])


def test_equal_wall_clock_budget_runs_the_search_per_model(planted, tmp_path):
    pytest.importorskip("optuna")
    r = run_bench(planted, "strong", ["popularity", "ease", "multdae"], seeds=2, budget_seconds=1.0, max_epochs=3,
                  show_progress=False)
    assert r.info["budget_kind"] == "seconds per model" and r.info["budget_seconds"] == 1.0 and r.info["budget"] is None
    assert r.info["torch_threads"] == 1  # one thread for every model
    assert {t["seed"] for t in r.trials} == {98765}  # searched on the first split, refitted on the second
    assert [t["model"] for t in r.trials][0] == "popularity" and sum(t["model"] == "popularity" for t in r.trials) == 1
    ease = [t for t in r.trials if t["model"] == "ease"]
    assert ease[0]["params"] == {"l2": 500.0} and all("state" in t for t in ease)
    chosen = {row["model"]: row for row in r.rows if row["seed"] == 98765}
    assert chosen["ease"]["valid_ndcg@100"] == max(t["valid_ndcg@100"] for t in ease)
    assert chosen["ease"]["tune_seconds"] == pytest.approx(sum(t["fit_seconds"] for t in ease))
    md = write(r, tmp_path, "timed", "recae bench ...")["md"].read_text()
    assert "1 s per model (equal wall-clock budget" in md


@pytest.mark.parametrize("bad", [0, -1.0, "60", True, float("inf"), float("nan")])
def test_budget_seconds_must_be_positive_and_finite(planted, bad):
    with pytest.raises(DataError, match="budget_seconds"):
        run_bench(planted, "strong", ["ease"], seeds=1, budget_seconds=bad, show_progress=False)


def test_the_equal_trials_report_says_so(result, tmp_path):
    md = write(result, tmp_path, "trials", "recae bench ...")["md"].read_text()
    assert "2 trials per model (equal trial count" in md and result.info["budget_kind"] == "trials per model"


def test_a_peer_without_its_package_is_left_out_and_the_results_say_why(planted, monkeypatch):
    import recae.bench.runner as runner
    from recae.bench.report import markdown

    monkeypatch.setattr(runner, "missing_peer",
                        lambda cls: "SANSA needs the 'sansa' package: pip install sansa" if cls == "SANSA" else None)
    result = run_bench(planted, models=["popularity", "sansa"], seeds=1, budget=1, show_progress=False)
    assert [r["model"] for r in result.rows] == ["popularity"]
    assert result.info["absent"] == {"sansa": "SANSA needs the 'sansa' package: pip install sansa"}
    env = {"command": "test", "date": "today", "machine": "here", "versions": {}}
    assert "- sansa is absent: SANSA needs the 'sansa' package: pip install sansa" in markdown(result, env)


def test_the_default_models_are_what_recae_bench_runs(planted, monkeypatch):
    import recae.bench.runner as runner
    from recae.bench.spaces import DEFAULT_MODELS

    class Seen(Exception):
        pass

    def stop(models):
        raise Seen(list(models))

    monkeypatch.setattr(runner, "check_models", stop)
    with pytest.raises(Seen) as got:
        run_bench(planted, "strong", show_progress=False)
    assert got.value.args[0] == list(DEFAULT_MODELS)
    assert "sansa" not in DEFAULT_MODELS and "factorease" not in DEFAULT_MODELS


@pytest.mark.parametrize("args, message", [
    (["--budget", "0"], "--budget must be a positive integer; got 0"),
    (["--seeds", "0"], "--seeds must be a positive integer; got 0"),
    (["--max-epochs", "-1"], "--max-epochs must be a positive integer; got -1"),
    (["--models", "foo"], "unknown model(s) ['foo']"),
])
def test_cli_checks_what_needs_no_data_first(args, message, capsys, tmp_path):
    # --data names a file that does not exist: the flag's error must come before any loading
    rc = main(["bench", "--data", str(tmp_path / "absent.csv"), *args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"recae: error: {message}")
    assert "absent.csv" not in err


def test_bench_says_a_temporal_split_runs_once_when_seeds_are_given(tmp_path, capsys):
    from recae.cli import main

    assert main(["bench", "--data", "synthetic", "--protocol", "temporal", "--seeds", "2", "--models", "popularity",
                 "--budget", "1", "--out", str(tmp_path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "recae: warning: --seeds 2: the temporal split has no randomness, so it runs once" in err


def test_a_search_trial_draws_no_progress_bar_of_its_own():
    from recae.bench.fitting import fit_model
    split = make_split(synthetic(n_users=120, n_items=40, random_state=0), "strong", 0)
    during = []

    def seen(owner, epoch, logs):
        during.append(owner.show_progress)
        return False

    model, _ = fit_model("multdae", {"epochs": 1}, split, callbacks=[seen])
    assert during == [False]  # the bench's bar and tune's trial lines are the progress shown
    assert model.show_progress is None  # the fitted model keeps its own setting (a refit of it shows a bar)
    model, _ = fit_model("multdae", {"epochs": 1, "show_progress": True}, split, callbacks=[seen])
    assert during == [False, True] and model.show_progress is True  # a setting given for the trial is kept


def test_a_run_holding_nan_renders_again(result, tmp_path):
    import copy

    from recae.bench import load_result

    run = copy.deepcopy(result)
    run.info.update(dataset="planted", seconds=1.0)
    run.rows[0]["ndcg@100_se"] = float("nan")  # one scored user: no standard error
    first = write(run, tmp_path / "a", "run", command="recae bench x")
    loaded, env = load_result(first["json"])  # before: JSON's null came back as None and np.mean failed
    assert np.isnan(loaded.rows[0]["ndcg@100_se"])
    assert write(loaded, tmp_path / "b", "run", command="x", env=env)["md"].read_text() == first["md"].read_text()


@pytest.mark.parametrize("kwargs, match", [
    ({"data": "ml-100k"}, r"data must be an Interactions log \(recae.bench.load_dataset\('ml-100k'\)"),
    ({"k": "20"}, r"k must be a sequence of positive integers such as \(20, 50, 100\); got '20'"),
    ({"threads": 0}, "threads must be a positive integer or None; got 0"),
    ({"max_epochs": 0}, "max_epochs must be a positive integer or None; got 0"),
])
def test_run_bench_names_bad_arguments(planted, kwargs, match):
    with pytest.raises(DataError, match=match):
        run_bench(**{"data": planted, "models": ["ease"], "seeds": 1, "budget": 1, "show_progress": False, **kwargs})


def test_run_bench_refuses_an_empty_validation_part_before_any_fit(monkeypatch):
    import recae.bench.runner as runner

    monkeypatch.setattr(runner, "_fit", lambda *a, **k: pytest.fail("fitted on a split without validation"))
    import scipy.sparse as sp

    from recae import Interactions

    rng = np.random.default_rng(0)
    cols = np.stack([rng.choice(50, 2, replace=False) for _ in range(300)]).ravel()
    few = Interactions(sp.csr_matrix((np.ones(600, np.float32), (np.repeat(np.arange(300), 2), cols)),
                                     shape=(300, 50)))  # 2 entries a user: too few for a validation item
    with pytest.warns(DataWarning), pytest.raises(DataError, match="the split's validation part holds no entries"):
        run_bench(few, "holdout", ["ease"], seeds=1, budget=2, show_progress=False)
