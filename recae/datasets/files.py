"""Interaction logs from your own files: delimited text (CSV, TSV) and Parquet.

:func:`load_log` picks the reader from the file's suffix; it is what ``recae --data
PATH`` and :func:`recae.bench.load_dataset` use. :func:`load_csv` and :func:`load_parquet`
are :meth:`Interactions.from_csv <recae.data.Interactions.from_csv>` and
:meth:`~recae.data.Interactions.from_parquet`, whose reading is in
:mod:`recae.data.logfiles`.
"""

from __future__ import annotations

from pathlib import Path

from ..data.interactions import Interactions
from ..data.validate import as_path

#: Suffixes read as Parquet by :func:`load_log`; any other file is read as delimited text.
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Suffixes of tab-separated text: :func:`load_log`'s default separator is a tab for these, else ",".
TAB_SUFFIXES = (".tsv", ".tab")
#: Suffixes that mark a name as a log file's (used to tell a mistyped dataset name from a path).
LOG_SUFFIXES = PARQUET_SUFFIXES + TAB_SUFFIXES + (".csv", ".txt", ".dat")


def load_csv(path, **kwargs) -> Interactions:
    """Read a delimited interaction log; the same as :meth:`Interactions.from_csv`.

    Parameters
    ----------
    path : str or os.PathLike
    **kwargs
        ``user``, ``item``, ``rating``, ``timestamp``, ``duplicates`` and any
        :func:`pandas.read_csv` option.

    Returns
    -------
    Interactions
        User×item log of shape (n_users, n_items).
    """
    return Interactions.from_csv(path, **kwargs)


def load_parquet(path, **kwargs) -> Interactions:
    """Read a Parquet interaction log; the same as :meth:`Interactions.from_parquet`.

    Parameters
    ----------
    path : str or os.PathLike
    **kwargs
        ``user``, ``item``, ``rating``, ``timestamp``, ``duplicates``.

    Returns
    -------
    Interactions
        User×item log of shape (n_users, n_items).
    """
    return Interactions.from_parquet(path, **kwargs)


#: Suffixes pandas reads as compressed text.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")


def format_suffix(path) -> str:
    """The suffix naming a log's format, lower-case: ``ratings.tsv.gz`` → ``.tsv`` (``""`` for none)."""
    suffixes = [s.lower() for s in Path(as_path(path)).suffixes]
    return suffixes[-2] if len(suffixes) > 1 and suffixes[-1] in COMPRESSED_SUFFIXES else (suffixes or [""])[-1]


def load_log(path, *, sep: str | None = None, user: str = "user", item: str = "item", rating: str | None = None,
             timestamp: str | None = None, duplicates: str | None = None, encoding: str | None = None) -> Interactions:
    """Read an interaction log, choosing the reader from the file's suffix.

    ``.parquet``/``.pq`` files are read with :func:`load_parquet` (``sep`` and ``encoding`` are
    ignored); any other file with :func:`load_csv`, separated by ``sep``, which defaults to a tab
    for ``.tsv``/``.tab`` files and to ``","`` otherwise, in ``encoding`` (default UTF-8).

    Returns
    -------
    Interactions
        User×item log of shape (n_users, n_items).
    """
    cols = dict(user=user, item=item, rating=rating, timestamp=timestamp, duplicates=duplicates)
    suffix = format_suffix(path)
    if suffix in PARQUET_SUFFIXES:
        return load_parquet(path, **cols)
    if sep is None:
        sep = "\t" if suffix in TAB_SUFFIXES else ","
    return load_csv(path, sep=sep, **cols, **({} if encoding is None else {"encoding": encoding}))
