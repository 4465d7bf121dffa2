"""Where recae looks for dataset files.

Lookup order (first match wins):

1. the ``data_dir`` argument, when given (and then only it);
2. the directory named by the ``RECAE_DATA_DIR`` environment variable, when set;
3. ``./datasets`` relative to the current working directory.

Each dataset lives in its own folder below a data directory, named as the official archive
extracts (``<data dir>/ml-100k/u.data``, ``<data dir>/ml-1m/ratings.dat``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.validate import as_path

DATA_ENV = "RECAE_DATA_DIR"
"""Name of the environment variable that points at the data directory."""

DEFAULT_SUBDIR = "datasets"


def candidate_dirs(data_dir=None) -> list[Path]:
    """Data directories to search, in order.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        An explicit data directory. When given it is the only candidate.

    Returns
    -------
    list of pathlib.Path
        ``[data_dir]`` when given; otherwise ``$RECAE_DATA_DIR`` (when set and non-empty)
        followed by ``./datasets`` (absolute, from the current working directory), without
        duplicates.
    """
    if data_dir is not None:
        return [Path(as_path(data_dir, "data_dir")).expanduser()]
    out: list[Path] = []
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        out.append(Path(env).expanduser())
    local = Path.cwd() / DEFAULT_SUBDIR
    if not any(_same(local, p) for p in out):
        out.append(local)
    return out


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover - unreadable paths
        return a == b


def find_dataset_dir(name: str, required_files, data_dir=None) -> Path | None:
    """The folder ``<candidate>/<name>`` of the first candidate holding all required files.

    Parameters
    ----------
    name : str
        Dataset folder name, e.g. ``"ml-100k"``.
    required_files : iterable of str
        File names (relative to the dataset folder) that must all exist.
    data_dir : str or os.PathLike, optional
        Explicit data directory (see :func:`candidate_dirs`).

    Returns
    -------
    pathlib.Path or None
        ``<data dir>/<name>`` for the first candidate data directory where every required
        file exists, else ``None``.
    """
    if isinstance(required_files, (str, os.PathLike)):
        required_files = [required_files]
    required = list(required_files)
    for base in candidate_dirs(data_dir):
        folder = base / name
        if all((folder / f).is_file() for f in required):
            return folder
    return None
