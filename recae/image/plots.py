"""PNG figures for image autoencoders: reconstructions, codes in 2-D, the training curve.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), so
nothing here touches pyplot's global backend or state; matplotlib is imported only when a
plotting function runs (it is in recae's ``bench`` extra).
"""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import DataError, ShapeError


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"plots need matplotlib (pip install 'recae[bench]' or pip install matplotlib): {exc}") from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # selects the Agg backend for this figure only
    return fig


def _save(fig, path) -> str:
    path = os.fspath(path)
    fig.savefig(path, format="png")
    return path


def _as_display(images: np.ndarray) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, 3) colour for imshow."""
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ShapeError(f"flat images of width {images.shape[1]} are not square; pass (N, H, W)")
        return images.reshape(-1, side, side)
    if images.ndim == 4:
        return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
    return images


def plot_reconstructions(model, images, path, n: int = 10) -> str:
    """Originals (top row) above their reconstructions (bottom row), written as PNG.

    Parameters
    ----------
    model : fitted ImageAutoencoder
    images : array-like of shape (N, H, W), (N, C, H, W) or (N, D)
        The first ``n`` are shown.
    path : str or os.PathLike
        PNG file to write.
    n : int, default 10

    Returns
    -------
    str
        The path written.
    """
    images = np.asarray(images)[:n]
    recon = model.reconstruct(images)
    orig, rec = _as_display(images.astype(np.float32)), _as_display(recon)
    k = len(orig)
    fig = _figure(max(k, 2) * 0.9, 2.1)
    for row, batch in enumerate((orig, rec)):
        for j in range(k):
            ax = fig.add_subplot(2, k, row * k + j + 1)
            ax.imshow(batch[j], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel("input" if row == 0 else "output", fontsize=8)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.98, bottom=0.02, wspace=0.05, hspace=0.05)
    return _save(fig, path)


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, str]:
    """Codes as 2-D points: as they are for a 2-d code, else their first two principal components."""
    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ShapeError(f"codes must have shape (N >= 2, latent_dim); got {z.shape}")
    if not np.isfinite(z).all():
        raise DataError(f"codes hold {int((~np.isfinite(z)).any(axis=1).sum())} row(s) with NaN or infinite values; "
                        "a model whose training diverged gives them: refit it")
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z))]), "code"
    if z.shape[1] == 2:
        return z, "code"
    centred = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, "principal component"


def plot_codes(codes, labels, path, max_points: int = 5000) -> str:
    """Scatter of codes in 2-D coloured by label, written as PNG.

    Parameters
    ----------
    codes : array-like of shape (N, latent_dim)
        Shown as they are when latent_dim <= 2, else by their first two principal components.
    labels : array-like of shape (N,)
        Class of each point (e.g. the digit).
    path : str or os.PathLike
    max_points : int, default 5000
        An evenly spaced subset is drawn beyond this (keeps the PNG small).

    Returns
    -------
    str
    """
    z, axis_name = project_2d(np.asarray(codes))
    y = np.asarray(labels).ravel()
    if len(y) != len(z):
        raise ShapeError(f"labels must have one entry per code; got {len(y)} labels for {len(z)} codes")
    step = max(1, int(np.ceil(len(z) / max_points)))
    z, y = z[::step], y[::step]
    fig = _figure(5.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    classes = np.unique(y)
    import matplotlib

    if len(classes) <= 10:
        colors = matplotlib.colormaps["tab10"](np.arange(len(classes)))
    else:
        colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, len(classes)))
    for c, color in zip(classes, colors):
        sel = y == c
        ax.scatter(z[sel, 0], z[sel, 1], s=3, alpha=0.6, color=color, label=str(c), rasterized=True)
    ax.set_xlabel(f"{axis_name} 1")
    ax.set_ylabel(f"{axis_name} 2")
    if len(classes) <= 10:
        ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_history(history, path, valid_key: str = "mse") -> str:
    """Training loss (and validation MSE when recorded) per epoch, written as PNG.

    Parameters
    ----------
    history : list of dict
        A model's ``history_`` (keys ``epoch``, ``loss`` and optionally ``mse``).
    path : str or os.PathLike

    Returns
    -------
    str
    """
    if not history:
        raise DataError("history is empty: fit the model first")
    epochs = [h["epoch"] for h in history]
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(epochs, [h["loss"] for h in history], marker="o", ms=3, label="training loss")
    if all(valid_key in h for h in history):
        ax.plot(epochs, [h[valid_key] for h in history], marker="s", ms=3, label=f"validation {valid_key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, path)
