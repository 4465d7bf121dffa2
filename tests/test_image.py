"""Dense mode: MNIST loader, image loaders, ImageAutoencoder, plots and the ``image`` CLI."""

from __future__ import annotations

import argparse
import gzip
import shutil
import struct

import numpy as np
import pytest
import torch

import recae
from recae.anomaly import auroc
from recae.exceptions import DataError, DatasetNotFoundError, ModelFileError, NotFittedError, ShapeError
from recae.image import ImageAutoencoder, as_images, load_images, load_mnist
from recae.image.mnist import read_idx

from conftest import require_data

FAST = dict(epochs=3, batch_size=32, lr=3e-3, device="cpu", random_state=0)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def mnist_train(data_dir):
    require_data("mnist", "train-images-idx3-ubyte.gz")
    return load_mnist("train", data_dir=data_dir)


@pytest.fixture(scope="module")
def mnist(mnist_train, data_dir):
    train, train_y = mnist_train
    test, test_y = load_mnist("test", data_dir=data_dir)
    return train[:2000], train_y[:2000], test[:1000], test_y[:1000]


@pytest.fixture(scope="module")
def mlp_model(mnist):
    torch.set_num_threads(1)
    return ImageAutoencoder(arch="mlp", latent_dim=32, **dict(FAST, epochs=10)).fit(mnist[0])


# ---------------------------------------------------------------------------- loaders
def test_load_mnist_official_files(data_dir):
    require_data("mnist", "t10k-images-idx3-ubyte.gz")
    x, y = load_mnist("test", data_dir=data_dir)
    assert x.shape == (10_000, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    # official test-set label counts
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw, _ = load_mnist("test", data_dir=data_dir, as_float=False)
    assert raw.dtype == np.uint8 and np.array_equal(raw.astype(np.float32) / 255, x)


def test_load_mnist_train_pixel_stats(mnist_train):
    x, y = mnist_train
    assert x.shape == (60_000, 28, 28) and len(y) == 60_000
    assert x.mean() == pytest.approx(0.1307, abs=1e-4) and x.std() == pytest.approx(0.3081, abs=1e-4)


def test_mnist_data_dir_rules(tmp_path, monkeypatch, data_dir):
    require_data("mnist", "t10k-labels-idx1-ubyte.gz")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECAE_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        load_mnist("test")
    assert str(tmp_path / "datasets" / "mnist") in str(err.value) and "RECAE_DATA_DIR" in str(err.value)
    # $RECAE_DATA_DIR is used when no argument is given
    monkeypatch.setenv("RECAE_DATA_DIR", str(data_dir))
    assert load_mnist("test")[0].shape == (10_000, 28, 28)
    # a corrupted copy fails its checksum
    bad = tmp_path / "bad" / "mnist"
    bad.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "mnist" / name, bad / name)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes((bad / "t10k-labels-idx1-ubyte.gz").read_bytes()[:-10])
    with pytest.raises(DataError, match="checksum mismatch"):
        load_mnist("test", data_dir=tmp_path / "bad")
    with pytest.raises(DataError):  # even unverified, a truncated gzip is refused
        load_mnist("test", data_dir=tmp_path / "bad", verify=False)
    with pytest.raises(DataError, match="split"):
        load_mnist("valid", data_dir=data_dir)


def test_read_idx_hand_built(tmp_path):
    pixels = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, 2, 3, 3) + pixels.tobytes())
    np.testing.assert_array_equal(read_idx(path, 2051), pixels)
    with pytest.raises(DataError, match="magic number 2051; expected 2049"):
        read_idx(path, 2049)
    with pytest.raises(DataError, match="holds 2 records"):
        read_idx(path, 2051, count=5)
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, 3, 3, 3) + pixels.tobytes())
    with pytest.raises(DataError, match="header"):
        read_idx(path, 2051)


def test_as_images_layouts_and_errors():
    rng = np.random.default_rng(0)
    x = rng.random((4, 28, 28)).astype(np.float32)
    a, la = as_images(x)
    b, lb = as_images(x[:, None])
    c, lc = as_images(x.reshape(4, 784))
    assert a.shape == (4, 1, 28, 28) and (la, lb, lc) == ("hw", "chw", "flat")
    assert np.array_equal(a, b) and np.array_equal(a, c)
    with pytest.raises(ShapeError, match=r"\(N, H, W\)"):
        as_images(x[0, 0])
    with pytest.raises(ShapeError, match="channels-last"):
        as_images(rng.random((4, 28, 28, 3)))
    with pytest.raises(ShapeError, match="not a square"):
        as_images(rng.random((4, 700)))
    with pytest.raises(ShapeError, match="empty"):
        as_images(np.zeros((0, 28, 28)))
    bad = x.copy()
    bad[2, 5, 5] = np.nan
    with pytest.raises(DataError, match="1 NaN or infinite.*image 2"):
        as_images(bad)
    with pytest.raises(DataError, match=r"\[0, 1\].*divide 8-bit images by 255"):
        as_images(x * 255)
    with pytest.raises(DataError, match="numeric"):
        as_images(np.array([["a"]]))
    with pytest.raises(ShapeError, match="fit on 1×28×28"):
        as_images(rng.random((2, 32, 32)), (1, 28, 28))


def test_load_images_folder_and_files(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(folder / ("sub" if i == 2 else ".") / f"im{i}.png")
    x, paths = load_images(folder, return_paths=True)
    assert x.shape == (3, 8, 8) and [p.rsplit("/", 1)[1] for p in paths] == ["im0.png", "im1.png", "im2.png"]
    np.testing.assert_allclose(x, pixels / 255.0, atol=1e-6)
    assert load_images(folder, size=(4, 4)).shape == (3, 4, 4)
    assert load_images(folder, grayscale=False).shape == (3, 3, 8, 8)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(folder / "odd.png")
    with pytest.raises(ShapeError, match="differ in size"):
        load_images(folder)
    np.save(tmp_path / "a.npy", pixels)  # uint8 arrays are scaled
    np.testing.assert_allclose(load_images(tmp_path / "a.npy"), pixels / 255.0, atol=1e-6)
    np.savez(tmp_path / "b.npz", images=pixels / 255.0, labels=np.arange(3))
    assert load_images(tmp_path / "b.npz").shape == (3, 8, 8)
    with pytest.raises(FileNotFoundError):
        load_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_images(tmp_path / "empty")


# ---------------------------------------------------------------------------- the model
def test_mlp_reconstructs_mnist(mlp_model, mnist):
    _, _, test, _ = mnist
    err = mlp_model.anomaly_score(test)
    assert err.shape == (1000,) and err.dtype == np.float32
    assert err.mean() < 0.036  # measured 0.0317 on 2,000 training images, 10 epochs
    recon = mlp_model.reconstruct(test)
    assert recon.shape == test.shape and recon.min() >= 0 and recon.max() <= 1
    # the anomaly score is the per-image MSE of reconstruct()
    np.testing.assert_allclose(err, ((recon - test) ** 2).mean(axis=(1, 2)), rtol=1e-4, atol=1e-7)
    # every input layout gives the same answer, in its own layout
    flat = mlp_model.reconstruct(test[:5].reshape(5, 784))
    chw = mlp_model.reconstruct(test[:5, None])
    assert flat.shape == (5, 784) and chw.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(flat.reshape(5, 28, 28), recon[:5], atol=1e-6)
    np.testing.assert_allclose(chw[:, 0], recon[:5], atol=1e-6)
    # a trained model beats the best constant image (the mean) by a wide margin
    assert err.mean() < 0.5 * ((test - test.mean(axis=0)) ** 2).mean()


def test_encode_decode(mlp_model, mnist):
    test = mnist[2][:20]
    z = mlp_model.encode(test)
    assert z.shape == (20, 32) and np.all(np.isfinite(z))
    out = mlp_model.decode(z)
    assert out.shape == (20, 28, 28)
    np.testing.assert_allclose(out, mlp_model.reconstruct(test), atol=1e-6)
    with pytest.raises(ShapeError, match=r"\(N, 32\)"):
        mlp_model.decode(z[:, :3])
    with pytest.raises(DataError, match="NaN"):
        mlp_model.decode(np.full((1, 32), np.nan))


def test_bad_input_errors(mlp_model):
    rng = np.random.default_rng(0)
    with pytest.raises(ShapeError, match="fit on 1×28×28.*32×32"):
        mlp_model.reconstruct(rng.random((2, 32, 32)))
    with pytest.raises(ShapeError, match="784 values"):
        mlp_model.anomaly_score(rng.random((2, 100)))
    x = rng.random((2, 28, 28))
    x[1, 0, 0] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        mlp_model.encode(x)
    with pytest.raises(DataError, match="metric"):
        mlp_model.anomaly_score(x[:1], metric="psnr")
    with pytest.raises(NotFittedError):
        ImageAutoencoder().reconstruct(x[:1])
    with pytest.raises(DataError, match="arch"):
        ImageAutoencoder(arch="vit").fit(x[:1])
    with pytest.raises(DataError, match="latent_dim"):
        ImageAutoencoder(latent_dim=0).fit(x[:1])
    with pytest.raises(ShapeError, match="divisible by 4"):
        ImageAutoencoder(arch="conv").fit(rng.random((2, 30, 30)))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        ImageAutoencoder(**FAST).fit(rng.random((3, 28, 28)) * 2)


def test_classic_architecture():
    m = ImageAutoencoder(arch="mlp", latent_dim=3)
    sizes = [l.out_features for l in m._build((1, 28, 28))["encoder"].modules() if isinstance(l, torch.nn.Linear)]
    assert sizes == [128, 64, 12, 3]  # 784→128→64→12→3, the tutorial network
    m32 = ImageAutoencoder(arch="mlp", latent_dim=32)._build((1, 28, 28))
    assert [l.out_features for l in m32["decoder"].modules() if isinstance(l, torch.nn.Linear)] == [64, 128, 784]
    conv = ImageAutoencoder(arch="conv", latent_dim=8, channels=(4, 8))._build((1, 28, 28))
    z = conv["encoder"](torch.zeros(2, 1, 28, 28))
    assert z.shape == (2, 8) and conv["decoder"](z).shape == (2, 1, 28, 28)


def test_conv_reconstructs_mnist(mnist):
    train, _, test, _ = mnist
    m = ImageAutoencoder(arch="conv", latent_dim=32, channels=(16, 32), **dict(FAST, epochs=4)).fit(train)
    assert m.anomaly_score(test).mean() < 0.027  # measured 0.0226


def test_one_class_anomaly(mnist):
    train, train_y, test, test_y = mnist
    m = ImageAutoencoder(arch="mlp", latent_dim=16, **dict(FAST, epochs=10)).fit(train[train_y == 1])
    score = auroc(m.anomaly_score(test), test_y != 1)
    assert score > 0.96  # measured 0.986: other digits reconstruct worse than ones


def test_same_seed_same_model_and_denoising(mnist):
    x = mnist[0][:300]
    kw = dict(FAST, epochs=1, noise=0.3)
    a = ImageAutoencoder(**kw).fit(x).encode(x[:5])
    b = ImageAutoencoder(**kw).fit(x).encode(x[:5])
    c = ImageAutoencoder(**dict(kw, random_state=1)).fit(x).encode(x[:5])
    assert np.array_equal(a, b) and not np.allclose(a, c)
    from recae.image.networks import corrupt

    g = torch.Generator().manual_seed(0)
    ones = torch.ones(20000)
    masked = corrupt(ones, 0.5, "masking", g)
    assert 0.47 < float((masked == 0).float().mean()) < 0.53
    noisy = corrupt(torch.full((1000,), 0.5), 0.5, "gaussian", g)
    assert noisy.min() >= 0 and noisy.max() <= 1 and noisy.std() > 0.3


def test_losses_penalties_and_optimizers(mnist):
    x, _, test, _ = mnist
    x = x[:600]
    base = ImageAutoencoder(**FAST).fit(x)
    bce = ImageAutoencoder(loss="bce", **FAST).fit(x)
    assert bce.history_[-1]["loss"] > 0.05  # cross-entropy of grey pixels is far above their MSE
    assert bce.anomaly_score(test, "mse").mean() < 0.07
    assert bce.anomaly_score(test, "bce").mean() > bce.anomaly_score(test, "mse").mean()
    l1 = ImageAutoencoder(l1=1e-3, **FAST).fit(x)
    w_base = sum(p.abs().sum() for n, p in base.module_.named_parameters() if p.ndim > 1)
    w_l1 = sum(p.abs().sum() for n, p in l1.module_.named_parameters() if p.ndim > 1)
    assert w_l1 < 0.7 * w_base
    sparse = ImageAutoencoder(code_l1=0.5, **FAST).fit(x)
    assert np.abs(sparse.encode(test[:100])).mean() < 0.5 * np.abs(base.encode(test[:100])).mean()
    for opt in ("adamw", "rmsprop", "sgd"):
        m = ImageAutoencoder(optimizer=opt, show_progress=True, **dict(FAST, epochs=1)).fit(x[:200])
        assert np.isfinite(m.history_[0]["loss"])


def test_validation_early_stopping_and_resume(mnist, tmp_path):
    x, _, test, _ = mnist
    x, valid = x[:400], test[:200]
    m = ImageAutoencoder(**dict(FAST, epochs=6)).fit(x, valid=valid)
    mses = [h["mse"] for h in m.history_]
    assert m.best_epoch_ == int(np.argmin(mses)) + 1
    assert m.anomaly_score(valid).mean() == pytest.approx(min(mses), rel=1e-5)  # the best weights are kept
    stop = ImageAutoencoder(**dict(FAST, epochs=40, patience=2, lr=1e-12)).fit(x, valid=valid)
    assert len(stop.history_) < 40 and len(stop.history_) - stop.best_epoch_ == 2
    # a run stopped after 2 epochs and resumed to 4 equals an uninterrupted 4-epoch run
    full = ImageAutoencoder(**dict(FAST, epochs=4)).fit(x)
    ImageAutoencoder(**dict(FAST, epochs=2)).fit(x, checkpoint_dir=tmp_path)
    resumed = ImageAutoencoder(**dict(FAST, epochs=4)).fit(x, checkpoint_dir=tmp_path, resume=True)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed.encode(valid[:10]), full.encode(valid[:10]), rtol=1e-5, atol=1e-6)
    with pytest.raises(recae.TrainingError, match="other hyper-parameters"):
        ImageAutoencoder(**dict(FAST, epochs=4, latent_dim=8)).fit(x, checkpoint_dir=tmp_path, resume=True)
    # a checkpoint chose its best epoch on its validation images: resuming without them, or with
    # others, would compare incomparable scores (and kept the old best over the new epochs)
    ImageAutoencoder(**dict(FAST, epochs=1)).fit(x, valid=valid, checkpoint_dir=tmp_path / "v")
    for other in (None, valid[:100]):
        with pytest.raises(recae.TrainingError, match=r"other hyper-parameters or data \(training or validation"):
            ImageAutoencoder(**dict(FAST, epochs=2)).fit(x, valid=other, checkpoint_dir=tmp_path / "v", resume=True)


def test_threshold_save_load(mlp_model, mnist, tmp_path):
    _, _, test, test_y = mnist
    m = ImageAutoencoder(**FAST).set_params(epochs=1)
    with pytest.raises(NotFittedError):
        m.save(tmp_path / "x.recae")
    with pytest.raises(NotFittedError, match="threshold"):
        mlp_model.predict_anomaly(test[:2])
    mlp_model.fit_threshold(test[:500], max_false_positive_rate=0.1)
    flagged = mlp_model.predict_anomaly(test[:500])
    assert flagged.mean() == pytest.approx(0.1, abs=0.01)
    path = tmp_path / "m.recae"
    mlp_model.save(path)
    back = ImageAutoencoder.load(path)
    assert back.threshold_ == mlp_model.threshold_ and back.get_params() == mlp_model.get_params()
    np.testing.assert_array_equal(back.reconstruct(test[:10]), mlp_model.reconstruct(test[:10]))
    same = recae.load(path)  # recae.load opens every recae file, image models too
    assert isinstance(same, ImageAutoencoder)
    np.testing.assert_array_equal(same.reconstruct(test[:10]), mlp_model.reconstruct(test[:10]))
    with pytest.raises(ModelFileError, match=r"holds an ImageAutoencoder \(image model\), not a recommender model"):
        recae.Recommender.load(path)  # a class's own load refuses other kinds
    import scipy.sparse as sp

    rec = recae.Popularity().fit(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    rec.save(tmp_path / "pop.recae")
    with pytest.raises(ModelFileError, match="recommender model"):
        ImageAutoencoder.load(tmp_path / "pop.recae")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    (tmp_path / "bad.recae").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        ImageAutoencoder.load(tmp_path / "bad.recae")
    with pytest.raises(ModelFileError, match="no model file"):
        ImageAutoencoder.load(tmp_path / "nothing.recae")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_quality(mnist):
    x, _, test, _ = mnist
    gpu = ImageAutoencoder(**dict(FAST, epochs=10, device="cuda")).fit(x)  # CPU: 0.0317 (test above)
    assert gpu.device_.type == "cuda" and gpu.anomaly_score(test).mean() < 0.04  # bfloat16 autocast: a little slack
    back = ImageAutoencoder(**dict(FAST, device="cuda")).fit(x[:200], valid=test[:100])
    assert np.isfinite(back.history_[-1]["mse"]) and back.encode(test[:3]).shape == (3, 32)


# ---------------------------------------------------------------------------- plots and CLI
def test_plots(mlp_model, mnist, tmp_path):
    pytest.importorskip("matplotlib")
    from recae.image import plots

    _, _, test, test_y = mnist
    written = [plots.plot_reconstructions(mlp_model, test, tmp_path / "grid.png"),
               plots.plot_codes(mlp_model.encode(test), test_y, tmp_path / "codes.png"),
               plots.plot_history(mlp_model.history_, tmp_path / "hist.png")]
    for p in written:
        data = open(p, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 200_000
    z, name = plots.project_2d(np.random.default_rng(0).normal(size=(50, 5)) * [10, 1, 1, 1, 1])
    assert z.shape == (50, 2) and name == "principal component"
    assert z[:, 0].std() > 3 * z[:, 1].std()  # the first component carries the dominant direction
    with pytest.raises(ShapeError):
        plots.plot_codes(np.zeros((5, 2)), np.zeros(4), tmp_path / "x.png")


def _parser():
    from recae.image.cli import add_image_parser

    p = argparse.ArgumentParser(prog="recae")
    add_image_parser(p.add_subparsers(dest="command", required=True))
    return p


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


def test_cli_fit_reconstruct_anomaly(tmp_path, capsys, data_dir):
    require_data("mnist", "t10k-images-idx3-ubyte.gz")
    model = tmp_path / "m.recae"
    common = ["--data", "mnist", "--data-dir", str(data_dir), "--device", "cpu"]
    assert _run(["image", "fit", *common, "--digit", "0", "--limit", "400", "--arch", "mlp", "--latent-dim", "8",
                 "--epochs", "15", "--batch-size", "32", "--out", str(model), "-q"]) == 0
    out = capsys.readouterr().out
    assert "digit 0 only (400 images)" in out and "360 for training, 40 for validation" in out and model.exists()
    assert _run(["image", "reconstruct", "--model-file", str(model), *common, "--limit", "50",
                 "--save-npy", str(tmp_path / "r.npy")]) == 0
    out = capsys.readouterr().out
    assert "Reconstruction MSE: 0.0" in out and np.load(tmp_path / "r.npy").shape == (50, 28, 28)
    assert _run(["image", "anomaly", "--model-file", str(model), *common, "--limit", "300", "--digit", "0",
                 "--output", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    value = float(out.split("AUROC (digit 0 normal, other digits anomalous): ")[1].split()[0])
    assert value > 0.85 and "Flagged above threshold" in out
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "index,score,label,flagged" and len(lines) == 301


def test_cli_array_file_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((64, 8, 8)).astype(np.float32))
    model = tmp_path / "m.recae"
    assert _run(["image", "fit", "--data", str(tmp_path / "x.npy"), "--arch", "conv", "--latent-dim", "4",
                 "--epochs", "1", "--device", "cpu", "--out", str(model), "-q"]) == 0
    np.save(tmp_path / "y.npy", rng.random((4, 12, 12)).astype(np.float32))
    with pytest.raises(ShapeError, match="1×8×8"):
        _run(["image", "anomaly", "--model-file", str(model), "--data", str(tmp_path / "y.npy")])
    with pytest.raises(recae.RecaeError, match="--digit"):
        _run(["image", "fit", "--data", str(tmp_path / "x.npy"), "--digit", "3", "--out", str(model)])
    # flags that need no data are refused first (the data named here does not exist)
    with pytest.raises(recae.RecaeError, match=r"--threshold-fpr must be in \(0, 1\).*got 5"):
        _run(["image", "fit", "--data", str(tmp_path / "absent.npy"), "--threshold-fpr", "5", "--out", str(model)])
    with pytest.raises(recae.RecaeError, match="--plots must be a folder"):
        _run(["image", "fit", "--data", str(tmp_path / "absent.npy"), "--plots", str(model), "--out", str(model)])
    assert _run(["image", "reconstruct", "--model-file", str(model), "--data", str(tmp_path / "x.npy"),
                 "--save-npy", str(tmp_path / "rec")]) == 0
    assert f"Reconstructions: {tmp_path / 'rec.npy'}" in capsys.readouterr().out and (tmp_path / "rec.npy").exists()


def test_cli_refuses_flags_before_the_work_and_names_them(tmp_path, capsys):
    from recae.cli import main

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((64, 8, 8)).astype(np.float32))
    model = tmp_path / "m.recae"
    assert _run(["image", "fit", "--data", str(tmp_path / "x.npy"), "--arch", "mlp", "--latent-dim", "4",
                 "--epochs", "1", "--device", "cpu", "--out", str(model), "-q"]) == 0
    data = ["--data", str(tmp_path / "x.npy")]
    for argv, message in (
            (["fit", *data, "--epochs", "0", "--out", str(model)], "--epochs must be a positive integer"),
            (["fit", *data, "--valid-fraction", "0.001", "--out", str(model)], "--valid-fraction 0.001 of 64 images "
                                                                                 "holds out none"),
            (["fit", *data, "--out", str(tmp_path / "absent" / "m.recae")], "m.recae': the folder"),  # before training
            (["reconstruct", "--model-file", str(model), *data, "-n", "0", "--out", str(tmp_path / "g.png")],
             "-n must be a positive number"),
            (["reconstruct", "--model-file", str(model), *data, "--out", str(tmp_path / "absent" / "g.png")],
             "the folder"),
            (["anomaly", "--model-file", str(model), *data, "--digit", "12"], "--digit must be 0-9; got 12")):
        capsys.readouterr()
        assert main(["image", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_one_image_without_its_batch_axis_gets_a_hint():
    from recae.image.data import as_images

    with pytest.raises(ShapeError, match=r"one H×W image\? pass it as images\[None\], shape \(1, H, W\)"):
        as_images(np.zeros((28, 28), np.float32))
    # and where a fitted model knows its image size (encode, reconstruct, anomaly_score)
    with pytest.raises(ShapeError, match=r"1×28×28 images \(784 values\) \(one image\? pass it as images\[None\]\)"):
        as_images(np.zeros((28, 28), np.float32), (1, 28, 28))


def test_odd_values_get_clear_errors(tmp_path):
    """Found by a QA pass: each of these let a raw TypeError, ValueError or LinAlgError out."""
    from recae.image import plots
    rng = np.random.default_rng(0)
    model = ImageAutoencoder(arch="mlp", hidden_dims=(8,), latent_dim=2, epochs=1, device="cpu",
                             noise=np.float32(0.1)).fit(rng.random((16, 4, 4), dtype=np.float32))  # a NumPy float noise
    with pytest.raises(DataError, match=r"codes must be numbers of shape \(N, 2\); got str"):
        model.decode("abc")
    with pytest.raises(DataError, match=r"codes hold 10 row\(s\) with NaN or infinite values"):
        plots.plot_codes(np.full((10, 3), np.nan), np.zeros(10), tmp_path / "p.png")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"obj.npy' is not a numeric array file.*np.save\(path, images.astype"):
        load_images(tmp_path / "obj.npy")
    with pytest.raises(DataError, match=r"noise must be a finite number >= 0; got True"):
        ImageAutoencoder(noise=True, epochs=1).fit(rng.random((4, 4, 4), dtype=np.float32))
