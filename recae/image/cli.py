"""``recae image fit|reconstruct|anomaly``: the image autoencoder on the command line.

Registered on the main ``recae`` parser by :func:`add_image_parser`. Handlers return an
exit code; recae errors propagate to ``recae.cli.main``, which prints them.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys

import numpy as np

from ..atomic import atomic_write_text
from ..exceptions import DataError, RecaeError

IMAGE_EPILOG = """examples:
  recae image fit --data mnist --arch conv --latent-dim 32 --epochs 10 --out conv.recae --plots figs/
  recae image fit --data mnist --digit 3 --epochs 5 --out three.recae        one-class model for anomaly scores
  recae image fit --data faces/ --arch mlp --latent-dim 16 --out faces.recae  a folder of images (or .npy/.npz)
  recae image reconstruct --model-file conv.recae --data mnist --out grid.png
  recae image anomaly --model-file three.recae --data mnist --digit 3 --output scores.csv

--data mnist reads the official IDX files from <data dir>/mnist/ (--data-dir, then
$RECAE_DATA_DIR, then ./datasets): the training split for fit, the test split otherwise.
"""


def _load(args, split: str):
    """(images, labels or None, description) for --data."""
    from .data import load_images
    from .mnist import load_mnist

    if args.data.lower() == "mnist":
        images, labels = load_mnist(args.split or split, data_dir=args.data_dir)
        what = f"MNIST {args.split or split}"
        if getattr(args, "digit", None) is not None and args.command_image == "fit":
            if not 0 <= args.digit <= 9:
                raise DataError(f"--digit must be 0-9; got {args.digit}")
            keep = labels == args.digit
            images, labels = images[keep], labels[keep]
            what += f", digit {args.digit} only"
    else:
        if getattr(args, "digit", None) is not None:
            raise RecaeError("--digit applies to --data mnist only")
        images, labels, what = load_images(args.data), None, args.data
    if args.limit is not None:
        if args.limit < 1:
            raise DataError(f"--limit must be positive; got {args.limit}")
        images = images[:args.limit]
        labels = labels[:args.limit] if labels is not None else None
    return images, labels, f"{what} ({len(images)} images)"


def _check_folders(*flags) -> None:
    """Each ``(flag, path)``'s folder exists (a missing one is named before any work)."""
    for flag, path in flags:
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise DataError(f"{flag} {path!r}: the folder {folder!r} does not exist")


def cmd_image_fit(args) -> int:
    from .model import ImageAutoencoder

    if args.seed < 0:  # flags first: they need no data and no training
        raise DataError(f"--seed must be a non-negative integer; got {args.seed}")
    if not 0 <= args.valid_fraction < 1:
        raise DataError(f"--valid-fraction must be in [0, 1); got {args.valid_fraction}")
    if not 0 < args.threshold_fpr < 1:
        raise DataError(f"--threshold-fpr must be in (0, 1), a share of normal images to flag; got {args.threshold_fpr}")
    if args.plots and os.path.exists(args.plots) and not os.path.isdir(args.plots):
        raise DataError(f"--plots must be a folder for the figures; {args.plots!r} is a file")
    _check_folders(("--out", args.out))  # before training, not after it
    images, labels, what = _load(args, "train")
    n_valid = int(round(len(images) * args.valid_fraction))
    if args.valid_fraction > 0 and n_valid == 0:  # no threshold could be set, and anomaly would flag nothing
        raise DataError(f"--valid-fraction {args.valid_fraction:g} of {len(images)} images holds out none; raise it "
                        f"to at least {1 / len(images):.2g}, or pass 0 to fit without validation (and no threshold)")
    order = np.random.default_rng(args.seed).permutation(len(images))
    valid_idx, train_idx = order[:n_valid], order[n_valid:]
    if len(train_idx) == 0:
        raise DataError(f"no training images left after holding out {n_valid} for validation")
    model = ImageAutoencoder(arch=args.arch, latent_dim=args.latent_dim, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, loss=args.loss, noise=args.noise, noise_type=args.noise_type,
                             patience=args.patience if n_valid else None, device=args.device or "auto", random_state=args.seed,
                             show_progress=False if args.quiet else None)  # None: a bar on a terminal only
    valid = images[valid_idx] if n_valid else None
    model.fit(images[train_idx], valid=valid)
    print(f"Data: {what}; {len(train_idx)} for training, {n_valid} for validation")
    print(f"Model: {model!r}; {len(model.history_)} epochs, best epoch {model.best_epoch_}, "
          f"{sum(h['seconds'] for h in model.history_):.1f} s")
    if n_valid:
        mse = float(model.anomaly_score(valid).mean())
        model.fit_threshold(valid, max_false_positive_rate=args.threshold_fpr)
        print(f"Validation reconstruction MSE: {mse:.5f}; anomaly threshold {model.threshold_:.5f} "
              f"(flags {args.threshold_fpr:.1%} of validation images)")
    model.save(args.out)
    print(f"Saved: {args.out}")
    if args.plots:
        from . import plots

        os.makedirs(args.plots, exist_ok=True)
        shown = valid if n_valid else images[train_idx]
        written = [plots.plot_history(model.history_, os.path.join(args.plots, "history.png")),
                   plots.plot_reconstructions(model, shown, os.path.join(args.plots, "reconstructions.png"))]
        if labels is not None and len(np.unique(labels)) > 1:
            sample = order[:5000]
            written.append(plots.plot_codes(model.encode(images[sample]), labels[sample],
                                            os.path.join(args.plots, "codes.png")))
        print("Plots: " + ", ".join(written))
    return 0


def cmd_image_reconstruct(args) -> int:
    from .model import ImageAutoencoder

    if args.n < 1:
        raise DataError(f"-n must be a positive number of images for the grid; got {args.n}")
    _check_folders(("--out", args.out), ("--save-npy", args.save_npy))
    model = ImageAutoencoder.load(args.model_file, device=args.device)
    images, _, what = _load(args, "test")
    recon = model.reconstruct(images)
    mse = float(np.mean((recon.reshape(len(recon), -1) - np.asarray(images, np.float32).reshape(len(images), -1)) ** 2))
    print(f"Data: {what}")
    print(f"Reconstruction MSE: {mse:.5f}")
    if args.out:
        from . import plots

        print(f"Grid: {plots.plot_reconstructions(model, images, args.out, n=args.n)}")
    if args.save_npy:
        path = args.save_npy if str(args.save_npy).endswith(".npy") else f"{args.save_npy}.npy"  # as np.save names it
        np.save(path, recon)
        print(f"Reconstructions: {path}")
    return 0


def cmd_image_anomaly(args) -> int:
    from ..anomaly import auroc
    from .model import ImageAutoencoder

    if args.digit is not None and not 0 <= args.digit <= 9:  # before scoring: AUROC needs both classes
        raise DataError(f"--digit must be 0-9; got {args.digit}")
    model = ImageAutoencoder.load(args.model_file, device=args.device)
    images, labels, what = _load(args, "test")
    scores = model.anomaly_score(images, metric=args.metric)
    # the saved threshold is on the scale of the metric it was set with
    same_metric = getattr(model, "threshold_metric_", "mse") == args.metric
    flagged = scores > model.threshold_ if model.threshold_ is not None and same_metric else None
    # with the CSV on stdout (--output -) the summary goes to stderr, so the CSV can be piped
    say = (lambda *a: print(*a, file=sys.stderr)) if args.output == "-" else print
    say(f"Data: {what}")
    say(f"Anomaly score ({args.metric}): mean {scores.mean():.5f}, median {np.median(scores):.5f}, "
          f"max {scores.max():.5f}")
    if flagged is not None:
        say(f"Flagged above threshold {model.threshold_:.5f}: {int(flagged.sum())} of {len(scores)}")
    elif model.threshold_ is not None:
        say(f"No flags: the model's threshold was set on {model.threshold_metric_} scores, not {args.metric}")
    if args.digit is not None:
        if labels is None:
            raise RecaeError("--digit needs labelled data (--data mnist)")
        say(f"AUROC (digit {args.digit} normal, other digits anomalous): {auroc(scores, labels != args.digit):.4f}")
    if args.output:
        buffer = io.StringIO()
        w = csv.writer(buffer)
        w.writerow(["index", "score"] + (["label"] if labels is not None else [])
                   + (["flagged"] if flagged is not None else []))
        for i, s in enumerate(scores):
            w.writerow([i, f"{s:.6g}"] + ([int(labels[i])] if labels is not None else [])
                       + ([int(flagged[i])] if flagged is not None else []))
        if args.output == "-":
            sys.stdout.write(buffer.getvalue())
        else:
            atomic_write_text(args.output, buffer.getvalue())
    return 0


def add_image_parser(sub) -> argparse.ArgumentParser:
    """Register ``image`` (with ``fit``, ``reconstruct``, ``anomaly``) on a subparsers object."""
    p = sub.add_parser("image", help="autoencoders on images: fit, reconstruct, anomaly scores", epilog=IMAGE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    isub = p.add_subparsers(dest="command_image", required=True, metavar="IMAGE_COMMAND")

    def data_args(sp_):
        g = sp_.add_argument_group("data")
        g.add_argument("--data", required=True, help="'mnist', a folder of images, or a .npy/.npz array file")
        g.add_argument("--data-dir", help="folder holding mnist/ (default: $RECAE_DATA_DIR, then ./datasets)")
        g.add_argument("--split", choices=("train", "test"), help="MNIST split (default: train for fit, else test)")
        g.add_argument("--limit", type=int, help="use only the first N images")
        g.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
        g.add_argument("--threads", type=int, help="torch threads (default: torch's; use 1 on a busy machine)")

    f = isub.add_parser("fit", help="train an image autoencoder and save it", epilog=IMAGE_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    data_args(f)
    f.add_argument("--digit", type=int, help="MNIST: train on this digit only (one-class model)")
    f.add_argument("--arch", choices=("mlp", "conv"), default="conv")
    f.add_argument("--latent-dim", type=int, default=32)
    f.add_argument("--epochs", type=int, default=10)
    f.add_argument("--batch-size", type=int, default=128)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--loss", choices=("mse", "bce"), default="mse")
    f.add_argument("--noise", type=float, default=0.0, help="input noise while training (denoising)")
    f.add_argument("--noise-type", choices=("gaussian", "masking"), default="gaussian")
    f.add_argument("--patience", type=int, default=None, help="early stopping on validation MSE")
    f.add_argument("--valid-fraction", type=float, default=0.1, help="images held out for validation (default 0.1)")
    f.add_argument("--threshold-fpr", type=float, default=0.01,
                   help="share of validation images above the saved anomaly threshold (default 0.01)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", required=True, help="model file to write (safetensors + JSON metadata)")
    f.add_argument("--plots", help="folder for history.png, reconstructions.png and codes.png")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_image_fit)

    r = isub.add_parser("reconstruct", help="reconstruction error and an originals-vs-outputs grid")
    r.add_argument("--model-file", required=True)
    data_args(r)
    r.add_argument("--out", help="PNG grid of originals above reconstructions")
    r.add_argument("-n", type=int, default=10, help="images in the grid (default 10)")
    r.add_argument("--save-npy", help="write all reconstructions to this .npy file")
    r.set_defaults(func=cmd_image_reconstruct, digit=None)

    a = isub.add_parser("anomaly", help="per-image anomaly scores (reconstruction error)")
    a.add_argument("--model-file", required=True)
    data_args(a)
    a.add_argument("--digit", type=int, help="MNIST: the normal digit; reports AUROC against the others")
    a.add_argument("--metric", choices=("mse", "bce", "l1"), default="mse")
    a.add_argument("--output", help="CSV of per-image scores ('-' for stdout)")
    a.set_defaults(func=cmd_image_anomaly)
    return p
