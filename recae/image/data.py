"""Dense image batches: input checking, the training-loop loader, and a folder/array loader.

Every public entry point of :mod:`recae.image` takes images as a NumPy array (or torch
tensor) of shape ``(N, H, W)``, ``(N, C, H, W)`` (channels first, C = 1 or 3) or
``(N, D)`` (flattened), with finite values in ``[0, 1]``. :func:`as_images` turns any of these
into one ``(N, C, H, W)`` float32 array and remembers the layout, so results come back in
the caller's shape.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..data.batching import row_batches
from ..exceptions import DataError, ShapeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _describe(shape) -> str:
    return "×".join(str(int(s)) for s in shape)


def as_images(x, image_shape=None, what: str = "images") -> tuple[np.ndarray, str]:
    """Check an image batch and return it as ``(N, C, H, W)`` float32 plus its layout.

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (N, H, W), (N, C, H, W) or (N, D)
        Values must be finite and in [0, 1].
    image_shape : tuple (C, H, W), optional
        The shape a fitted model expects; any other size is refused. Without it a flat
        ``(N, D)`` input must be a square grey image (D = H²).
    what : str
        Name used in error messages.

    Returns
    -------
    images : ndarray of float32, shape (N, C, H, W)
    layout : {"flat", "hw", "chw"}
        The input's layout, for :func:`restore_layout`.

    Raises
    ------
    ShapeError
        Wrong number of dimensions, no images, more than 3 channels, or a size other than
        ``image_shape``.
    DataError
        Non-numeric, non-finite or out-of-range values.
    """
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be a numeric array; could not convert {type(x).__name__}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what} must be a numeric array; got dtype {arr.dtype}")
    if arr.ndim not in (2, 3, 4):
        raise ShapeError(f"{what} must have shape (N, H, W), (N, C, H, W) or (N, H*W); got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ShapeError(f"{what} is empty: shape {arr.shape}")
    if arr.ndim == 2:
        layout = "flat"
        d = arr.shape[1]
        if image_shape is not None:
            if d != int(np.prod(image_shape)):
                one = (" (one image? pass it as images[None])"
                       if tuple(arr.shape) == tuple(image_shape)[-2:] else "")
                raise ShapeError(f"{what} have {d} values per image but the model was fit on "
                                 f"{_describe(image_shape)} images ({int(np.prod(image_shape))} values){one}")
            shape = tuple(image_shape)
        else:
            side = math.isqrt(d)
            if side * side != d:
                one = " (one H×W image? pass it as images[None], shape (1, H, W))" if arr.shape[0] == arr.shape[1] else ""
                raise ShapeError(f"flat {what} of shape {arr.shape} are not square grey images ({d} is not a square); "
                                 f"pass them as (N, H, W) or (N, C, H, W){one}")
            shape = (1, side, side)
        arr = arr.reshape(arr.shape[0], *shape)
    elif arr.ndim == 3:
        layout = "hw"
        arr = arr[:, None]
    else:
        layout = "chw"
        if arr.shape[1] not in (1, 3):
            hint = " (channels-last? move the channel axis: x.transpose(0, 3, 1, 2))" if arr.shape[3] in (1, 3) else ""
            raise ShapeError(f"{what} of shape {arr.shape} must be channels-first (N, C, H, W) with C = 1 or 3; "
                             f"got C = {arr.shape[1]}{hint}")
    if image_shape is not None and tuple(arr.shape[1:]) != tuple(image_shape):
        raise ShapeError(f"the model was fit on {_describe(image_shape)} (C×H×W) images; "
                         f"got {what} of size {_describe(arr.shape[1:])}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"{what} hold {int(bad.sum())} NaN or infinite pixel value(s) "
                        f"(first in image {int(np.argwhere(bad)[0][0])})")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        hint = "; divide 8-bit images by 255" if hi > 1.0 and hi <= 255.0 and lo >= 0.0 else ""
        raise DataError(f"{what} must have pixel values in [0, 1]; got values in [{lo:g}, {hi:g}]{hint}")
    return arr, layout


def restore_layout(images: np.ndarray, layout: str) -> np.ndarray:
    """``(N, C, H, W)`` images back in the caller's layout (see :func:`as_images`)."""
    if layout == "flat":
        return images.reshape(images.shape[0], -1)
    if layout == "hw":
        return images[:, 0]
    return images


class DenseLoader:
    """A dense ``(N, ...)`` tensor on a device, served in shuffled batches to the training loop.

    Implements the loader interface of :class:`recae.train.TrainState`: ``batches`` yields
    row-index tensors, ``gather`` returns the rows.

    Parameters
    ----------
    data : torch.Tensor of shape (N, ...)
    device : torch.device
    """

    def __init__(self, data: torch.Tensor, device: torch.device):
        self.device = torch.device(device)
        self.data = data.to(self.device)

    @property
    def n_rows(self) -> int:
        return self.data.shape[0]

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """The batch ``data[rows]`` on the loader's device."""
        return self.data[rows.to(self.device)]

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None):
        """Row-index tensors covering every row once (a seeded permutation when shuffling)."""
        return row_batches(self.n_rows, batch_size, shuffle=shuffle, generator=generator)


def load_images(source, *, size=None, grayscale: bool = True, return_paths: bool = False):
    """Load images for :class:`~recae.image.ImageAutoencoder` from a folder, a ``.npy``/``.npz`` file or an array.

    Parameters
    ----------
    source : str, os.PathLike, ndarray or torch.Tensor
        A folder of image files (PNG, JPEG, BMP, GIF, TIFF, WebP; read in sorted name order,
        sub-folders included), a ``.npy`` file, a ``.npz`` file holding one array (or an
        ``images`` entry), or an array. 8-bit arrays (dtype uint8) are scaled by 1/255;
        other arrays must already be in [0, 1].
    size : (int, int), optional
        ``(height, width)`` to resize folder images to; without it they must all share one size.
    grayscale : bool, default True
        Convert folder images to one grey channel (else RGB, three channels).
    return_paths : bool, default False
        Also return the file paths (folders only; ``None`` otherwise).

    Returns
    -------
    images : ndarray of float32, shape (N, H, W) for grey or (N, 3, H, W) for RGB images
        (arrays keep their layout).
    paths : list of str, only with ``return_paths=True``

    Raises
    ------
    DataError, ShapeError
        No images, unreadable files, mixed sizes, bad values.
    FileNotFoundError
        ``source`` names a path that does not exist.
    """
    paths = None
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source)).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no image folder or array file at {os.fspath(path)!r}")
        if path.is_dir():
            arr, paths = _read_folder(path, size, grayscale)
        elif path.suffix in (".npy", ".npz"):
            arr = _read_array_file(path)
        else:
            raise DataError(f"{os.fspath(path)!r} is neither a folder of images nor a .npy/.npz file")
    else:
        arr = source.detach().cpu().numpy() if torch.is_tensor(source) else np.asarray(source)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    checked, layout = as_images(arr)
    out = restore_layout(checked, layout)
    return (out, paths) if return_paths else out


def _read_array_file(path: Path) -> np.ndarray:
    """The images of a ``.npy`` file, or of a ``.npz`` file's one array (or its ``images`` entry)."""
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if "images" not in keys and len(keys) != 1:
                raise DataError(f"{os.fspath(path)!r} holds arrays {keys}; name the images array 'images'")
            return z["images" if "images" in keys else keys[0]]
    except ValueError as exc:  # object arrays (pickles) are never loaded; a damaged file reads as one too
        raise DataError(f"{os.fspath(path)!r} is not a numeric array file ({exc}); save the images as a numeric "
                        "array, e.g. np.save(path, images.astype(np.float32))") from None


def _read_folder(folder: Path, size, grayscale: bool) -> tuple[np.ndarray, list[str]]:
    try:
        from PIL import Image
    except ImportError as exc:  # pillow comes with matplotlib (the 'bench' extra)
        raise ImportError(f"reading image files needs Pillow (pip install pillow): {exc}") from None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {os.fspath(folder)!r}")
    arrays = []
    for p in files:
        try:
            with Image.open(p) as im:
                im = im.convert("L" if grayscale else "RGB")
                if size is not None:
                    im = im.resize((int(size[1]), int(size[0])))
                a = np.asarray(im, dtype=np.uint8)
        except OSError as exc:
            raise DataError(f"cannot read image {os.fspath(p)!r}: {exc}") from None
        if arrays and a.shape != arrays[0].shape:
            raise ShapeError(f"images differ in size: {os.fspath(files[0])!r} is {_describe(arrays[0].shape[:2])} "
                             f"but {os.fspath(p)!r} is {_describe(a.shape[:2])}; pass size=(height, width) to resize")
        arrays.append(a)
    arr = np.stack(arrays)
    if not grayscale:
        arr = arr.transpose(0, 3, 1, 2)
    return arr, [os.fspath(p) for p in files]
