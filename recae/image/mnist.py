"""MNIST from the official IDX gzip files, found through recae's data-directory rules.

Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998; data by Y. LeCun, C. Cortes, C. J. C. Burges.

The four files live in ``<data dir>/mnist/`` exactly as distributed
(``train-images-idx3-ubyte.gz`` ...). The data directory is the ``data_dir`` argument, else
``$RECAE_DATA_DIR``, else ``./datasets`` (see :mod:`recae.datasets.paths`). Each file is
checked against its published SHA-256 before it is parsed.
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from pathlib import Path

import numpy as np

from ..datasets.download import verify_checksum
from ..datasets.paths import DATA_ENV, candidate_dirs, find_dataset_dir
from ..exceptions import DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

FOLDER = "mnist"

#: split → (images file, labels file, number of images)
SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60_000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10_000),
}

#: SHA-256 of the official files.
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


def _not_found(files, data_dir) -> str:
    looked = "\n".join(f"  - {d / FOLDER}" for d in candidate_dirs(data_dir))
    return (f"MNIST not found: needed {', '.join(files)} in a folder named {FOLDER!r} under a data directory. "
            f"Looked in:\n{looked}\n"
            "Get the four official IDX gzip files (http://yann.lecun.com/exdb/mnist/, or a mirror such as "
            "https://ossci-datasets.s3.amazonaws.com/mnist/), put them unchanged in <data dir>/mnist/ and set "
            f"{DATA_ENV}=<data dir>, or pass data_dir=<data dir>.")


def read_idx(path, magic: int, count: int | None = None) -> np.ndarray:
    """Parse one gzip-compressed IDX file of unsigned bytes.

    Parameters
    ----------
    path : str or os.PathLike
    magic : int
        2051 for an image file (3 dimensions), 2049 for a label file (1 dimension).
    count : int, optional
        Expected number of records.

    Returns
    -------
    ndarray of uint8, shape (n,) or (n, rows, cols)

    Raises
    ------
    DataError
        Not gzip, wrong magic number, or a size that does not match the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file: {exc}") from None
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is too short for an IDX header ({len(raw)} bytes)")
    got = struct.unpack(">I", raw[:4])[0]
    if got != magic:
        raise DataError(f"{path} has IDX magic number {got}; expected {magic}")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise DataError(f"{path} holds {len(body)} data bytes; its header {dims} says {int(np.prod(dims))}")
    if count is not None and dims[0] != count:
        raise DataError(f"{path} holds {dims[0]} records; the official file has {count}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load_mnist(split: str = "train", data_dir=None, *, verify: bool = True, as_float: bool = True):
    """Load one MNIST split.

    Parameters
    ----------
    split : {"train", "test"}, default "train"
        60,000 training or 10,000 test images.
    data_dir : str or os.PathLike, optional
        Data directory holding ``mnist/``; default ``$RECAE_DATA_DIR``, then ``./datasets``.
    verify : bool, default True
        Check both files against the published SHA-256 first.
    as_float : bool, default True
        Pixels as float32 in [0, 1] (else the raw uint8 0-255).

    Returns
    -------
    images : ndarray of shape (N, 28, 28), float32 in [0, 1] (or uint8)
    labels : ndarray of int64, shape (N,), digits 0-9

    Raises
    ------
    DatasetNotFoundError
        The files are not in any candidate directory; the message lists where it looked.
    DataError
        A checksum mismatch or a malformed file.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {sorted(SPLITS)}; got {split!r}")
    img_name, lbl_name, count = SPLITS[split]
    folder = find_dataset_dir(FOLDER, [img_name, lbl_name], data_dir)
    if folder is None:
        raise DatasetNotFoundError(_not_found([img_name, lbl_name], data_dir))
    folder = Path(folder)
    if verify:
        for name in (img_name, lbl_name):
            verify_checksum(folder / name, sha256=SHA256[name])
    images = read_idx(folder / img_name, _IMAGES_MAGIC, count)
    labels = read_idx(folder / lbl_name, _LABELS_MAGIC, count).astype(np.int64)
    logger.info("loaded MNIST %s from %s: %d images", split, folder, len(images))
    if as_float:
        images = images.astype(np.float32) / np.float32(255.0)
    return images, labels
