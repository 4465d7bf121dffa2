"""``recae evaluate --model FILE``: a saved model's class and settings, fitted again on each split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import recae
from recae.datasets import registry

from test_cli import assert_clean_error, run

EVAL = ["evaluate", "--data", "synthetic", "--k", "20", "100", "--seeds", "3", "4", "-q"]


@pytest.fixture(scope="module")
def synthetic():
    return registry.load("synthetic", show_progress=False)[0]


def evaluated(capsys, tmp_path, name: str, *argv) -> tuple[pd.DataFrame, str]:
    """The per-seed table ``recae evaluate`` writes, and what it printed."""
    out = tmp_path / f"{name}.csv"
    rc, printed, err = run(capsys, *EVAL, *argv, "--output", out)
    assert rc == 0, err
    return pd.read_csv(out), printed


def test_a_saved_model_is_its_settings_fitted_again(synthetic, tmp_path, capsys):
    path = tmp_path / "ease.recae"
    recae.EASE(l2=30.0).fit(synthetic).save(path)  # fitted on every user: only its settings may count
    from_file, printed = evaluated(capsys, tmp_path, "file", "--model", path)
    assert f"EASE(l2=30.0) (the settings of {path}, fitted again on each split)" in printed
    by_name, _ = evaluated(capsys, tmp_path, "name", "--model", "ease", "--param", "l2=30.0")
    pd.testing.assert_frame_equal(from_file, by_name)
    other, _ = evaluated(capsys, tmp_path, "other", "--model", "ease", "--param", "l2=3000.0")
    assert not np.allclose(other["mean"], by_name["mean"])  # the setting matters on this data
    overridden, printed = evaluated(capsys, tmp_path, "override", "--model", path, "--param", "l2=3000.0")
    assert "EASE(l2=3000.0)" in printed
    pd.testing.assert_frame_equal(overridden, other)


def test_a_saved_blend_keeps_its_members_and_weights(synthetic, tmp_path, capsys):
    members = [("EASE", {"l2": 30.0}), ("LinearAE", {"l2": 20.0, "rank": 16})]
    path = tmp_path / "blend.recae"
    recae.Blend(members=members, weights=[0.6, 0.4]).fit(synthetic).save(path)
    from_file, _ = evaluated(capsys, tmp_path, "blend_file", "--model", path)
    by_name, _ = evaluated(capsys, tmp_path, "blend_name", "--model", "blend", "--param", f"members={members!r}",
                           "--param", "weights=[0.6, 0.4]")
    pd.testing.assert_frame_equal(from_file, by_name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_model_saved_for_a_missing_device_is_fitted_on_auto(synthetic, tmp_path, capsys):
    path = tmp_path / "cuda.recae"
    recae.EASE(l2=30.0).fit(synthetic).set_params(device="cuda").save(path)
    with pytest.raises(recae.ModelFileError, match="device='cpu'"):
        recae.load(path)  # what the command works around
    table, printed = evaluated(capsys, tmp_path, "cuda", "--model", path)
    assert "the device it was saved for is not usable here, so device='auto'" in printed
    assert table["mean"].notna().all()


def test_files_that_are_not_a_recommender(tmp_path, capsys):
    rc, out, err = run(capsys, *EVAL, "--model", tmp_path / "best.recae")
    assert_clean_error(rc, out, err, "no model file", "best.recae", "a model name (autorec,", "or a saved model file")
    junk = tmp_path / "notes.recae"
    junk.write_text("not a model")
    rc, out, err = run(capsys, *EVAL, "--model", junk)
    assert_clean_error(rc, out, err, "notes.recae", "is not a recae model file")
    from recae.image import ImageAutoencoder

    images = np.random.default_rng(0).random((40, 8, 8), dtype=np.float32)
    image_file = tmp_path / "image.recae"
    ImageAutoencoder(arch="mlp", latent_dim=4, epochs=1, batch_size=20, device="cpu").fit(images).save(image_file)
    rc, out, err = run(capsys, *EVAL, "--model", image_file)
    assert_clean_error(rc, out, err, "holds an ImageAutoencoder (image model), not a recommender model")


def test_a_model_name_still_wins_over_a_file_of_that_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ease").write_text("a file named like a model")
    rc, out, err = run(capsys, *EVAL, "--model", "ease", "--k", "100")
    assert rc == 0, err
    assert out.startswith("EASE() on")


def test_what_the_saved_fit_learned_on_validation_stays(synthetic, tmp_path, capsys):
    """The splits here have no validation part: a saved Blend's learned weights and a neural model's
    early-stopped epochs are what would be lost, so they become its settings."""
    split = recae.strong_generalization_split(synthetic, n_heldout=200, random_state=0)
    dae = recae.MultDAE(hidden_dims=(32,), epochs=60, lr=0.02, patience=2, batch_size=200, random_state=0, device="cpu")
    dae.fit(split.train, valid=split)
    assert dae.best_epoch_ < 60  # stopped early, or the test shows nothing
    dae.save(tmp_path / "dae.recae")
    table, printed = evaluated(capsys, tmp_path, "dae", "--model", tmp_path / "dae.recae", "--seeds", "3")
    assert f"the {dae.best_epoch_} epochs its validation stopped at" in printed
    assert f"epochs={dae.best_epoch_}" in printed.splitlines()[0]

    ease = recae.EASE(l2=30.0).fit(split.train)
    low_rank = recae.LinearAE(l2=20.0, rank=16).fit(split.train)
    blend = recae.Blend.from_models([ease, low_rank], valid=split)
    assert blend.weights is None and 0 < blend.weights_[0] < 1
    blend.save(tmp_path / "blend_valid.recae")
    from_file, printed = evaluated(capsys, tmp_path, "blend_valid", "--model", tmp_path / "blend_valid.recae")
    assert "the Blend's weights learned on validation" in printed
    members = [("EASE", {"l2": 30.0}), ("LinearAE", {"l2": 20.0, "rank": 16})]
    by_name, _ = evaluated(capsys, tmp_path, "blend_weights", "--model", "blend", "--param", f"members={members!r}",
                           "--param", f"weights={[float(w) for w in blend.weights_]!r}")
    pd.testing.assert_frame_equal(from_file, by_name)


def test_an_output_that_cannot_be_written_is_refused_before_any_fit(tmp_path, capsys, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the --output check")

    monkeypatch.setattr(recae.EASE, "fit", no_fit)
    rc, out, err = run(capsys, *EVAL, "--model", "ease", "--output", tmp_path)
    assert_clean_error(rc, out, err, f"--output must be a file path such as results.csv; {str(tmp_path)!r} is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, out, err = run(capsys, *EVAL, "--model", "ease", "--output", blocker / "r.csv")
    assert_clean_error(rc, out, err, "--output's folder", "cannot be made")


def test_a_rating_model_is_refused_with_what_to_do_instead(capsys):
    rc, out, err = run(capsys, *EVAL, "--model", "autorec")
    assert_clean_error(rc, out, err, "AutoRec trains on explicit ratings, and recae evaluate ranks the positives")


def test_repeated_seeds_missing_folders_quiet_bars_and_empty_targets(tmp_path, capsys, monkeypatch):
    rc, out, err = run(capsys, "evaluate", "--data", "synthetic", "--seeds", "1", "1", "--model", "ease")
    assert_clean_error(rc, out, err, "--seeds lists 1 more than once; give distinct seeds")  # before: std 0 over "2"
    seen = []
    import recae.train

    class Bar:  # records what the trainer asks of tqdm
        def __init__(self, *args, disable=None, **kwargs):
            seen.append(disable)

        def __getattr__(self, name):
            return lambda *a, **k: None

    monkeypatch.setattr(recae.train, "tqdm", Bar)
    out_csv = tmp_path / "new" / "deeper" / "r.csv"  # before: both fits ran, then the write failed
    rc, printed, err = run(capsys, *EVAL[:-4], "--seeds", "3", "-q", "--model", "multdae", "--param", "epochs=1",
                           "--output", out_csv)
    assert rc == 0, err
    assert out_csv.exists() and seen and all(d is True for d in seen)  # -q: no training bar either


def test_a_part_without_held_out_items_is_an_error_not_a_nan_table():
    import scipy.sparse as sp

    from recae.data import Interactions, strong_generalization_split

    X = sp.csr_matrix(np.eye(40, 12, dtype=np.float32))  # one item per user: nothing is left to hold out
    with pytest.warns(recae.DataWarning, match="the test target part is empty"):
        split = strong_generalization_split(Interactions(X), 0.2, random_state=0)
    model = recae.Popularity().fit(split.train)
    with pytest.raises(recae.DataError, match="no user of the split's test part has held-out items"):
        recae.evaluate(model, split)
