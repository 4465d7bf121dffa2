"""MovieLens ratings files: parsing the three published layouts and :func:`load_movielens`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ...data.interactions import Interactions
from ...exceptions import DataError
from .source import get_variant, locate

logger = logging.getLogger(__name__)

RATING_DTYPES = {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}


def read_ratings(path: Path, fmt: str) -> pd.DataFrame:
    """Columns user, item, rating, timestamp from one MovieLens ratings file.

    ``fmt`` is the release's layout: ``"tab"`` (100K's ``u.data``), ``"colons"`` (1M/10M
    ``ratings.dat``) or ``"csv"`` (20M on). These are fixed published formats, so they are
    parsed here with their own dtypes rather than through the generic log reader.
    """
    try:
        if fmt == "tab":
            df = pd.read_csv(path, sep="\t", header=None, names=list(RATING_DTYPES), dtype=RATING_DTYPES)
        elif fmt == "colons":
            # "u::i::r::t" split on single ':' gives 7 fields with empty ones in between; the C
            # parser is ~50x faster than sep="::" (which needs the python engine).
            df = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4, 6],
                             names=["user", "_1", "item", "_2", "rating", "_3", "timestamp"], dtype=RATING_DTYPES)
            df = df[["user", "item", "rating", "timestamp"]]
        elif fmt == "csv":
            df = pd.read_csv(path, header=0, dtype={"userId": np.int64, "movieId": np.int64,
                                                    "rating": np.float32, "timestamp": np.int64})
            missing = {"userId", "movieId", "rating", "timestamp"} - set(df.columns)
            if missing:
                raise DataError(f"{path} lacks column(s) {sorted(missing)}; got {list(df.columns)}")
            df = df.rename(columns={"userId": "user", "movieId": "item"})[list(RATING_DTYPES)]
        else:  # pragma: no cover - internal table
            raise AssertionError(fmt)
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"could not parse MovieLens ratings file {path}: {exc}. The file may be truncated "
                        "or corrupted; delete its folder and download it again.") from None
    return df


def check_count(df: pd.DataFrame, expected: int | None, path: Path) -> None:
    """The release's row count, and its last line: a file cut inside it still has every row, and a
    timestamp cut short still parses (the other fields fail their checks when cut)."""
    if expected is None:
        return
    if len(df) != expected:
        raise DataError(
            f"{path} has {len(df):,} ratings; the official release has {expected:,}. The file is "
            "truncated or modified; delete its folder and download it again."
        )
    with open(path, "rb") as f:
        f.seek(-1, 2)
        ended = f.read(1) == b"\n"
    digits = [len(str(abs(int(t)))) for t in df["timestamp"].iloc[-2:]]
    if not ended and len(digits) == 2 and digits[1] < digits[0]:  # a release without a final newline still loads
        raise DataError(f"{path} does not end with a newline, and its last timestamp is shorter than the one before: "
                        f"its last line ({ {c: df[c].iat[-1].item() for c in df.columns} }) is cut short. Delete its "
                        "folder and download it again.")


def check_values(df: pd.DataFrame, whole_stars: bool, path: Path) -> None:
    """What every official release holds: ids from 1, one rating per (user, item), stars 1-5 (halves from 10M)."""
    stars = df["rating"].to_numpy()
    allowed = np.arange(1, 6) if whole_stars else np.arange(1, 11) / 2
    problems = [(f"ratings outside {allowed.tolist()}", ~np.isin(stars, allowed)),
                ("user or movie ids below 1", (df["user"].to_numpy() < 1) | (df["item"].to_numpy() < 1)),
                ("repeated (user, movie) pairs", df.duplicated(["user", "item"]).to_numpy())]
    for what, bad in problems:
        if bad.any():
            row = int(bad.argmax())
            raise DataError(f"{path} holds {what} ({int(bad.sum()):,}, first in data row {row + 1}: "
                            f"{ {c: df[c].iloc[row].item() for c in df.columns} }), which the official release does not. The file is "
                            "modified; delete its folder and download it again.")


def ratings_to_interactions(df: pd.DataFrame) -> Interactions:
    """Interactions of a :func:`read_ratings` frame (explicit ratings with timestamps)."""
    return Interactions.from_pandas(df, user="user", item="item", rating="rating", timestamp="timestamp")


def load_movielens(variant: str = "100k", data_dir=None, download: bool = True, show_progress: bool = True) -> Interactions:
    """Load a MovieLens ratings log with explicit ratings and timestamps.

    Parameters
    ----------
    variant : {"100k", "1m", "10m", "20m", "25m", "latest", "latest-small"}, default "100k"
        Which release. ``"ml-1m"`` style names are accepted too.
    data_dir : str or os.PathLike, optional
        Data directory holding ``<folder>/<ratings file>`` (e.g. ``ml-1m/ratings.dat``). When
        omitted, ``$RECAE_DATA_DIR`` and then ``./datasets`` are searched.
    download : bool, default True
        When the files are not found, download the official archive from
        ``https://files.grouplens.org/datasets/movielens/`` into the first candidate
        directory (``data_dir``, else ``$RECAE_DATA_DIR``, else ``./datasets``), verifying the
        published MD5.
    show_progress : bool, default True
        Progress bar while downloading.

    Returns
    -------
    Interactions
        User×item matrix of shape (n_users, n_items) holding the star ratings (float32;
        half stars from 10M on), raw MovieLens ids as ``user_ids``/``item_ids`` and one
        Unix timestamp per rating (``timestamps``, shape (nnz,)). ML-100K: 943 × 1682 with
        100,000 ratings; ML-1M: 6040 × 3706 with 1,000,209.

    Raises
    ------
    DatasetNotFoundError
        The files are absent and could not be (or were not allowed to be) downloaded. The
        message lists every directory searched and the official URL.
    DataError
        The file is malformed, or its row count differs from the official release.
    """
    v = get_variant(variant)
    folder = locate(v, [v.ratings], data_dir, download, show_progress)
    path = folder / v.ratings
    df = read_ratings(path, v.fmt)
    check_count(df, v.n_ratings, path)
    if v.n_ratings is not None:  # a fixed release (the "latest" ones change)
        check_values(df, v.key in ("100k", "1m"), path)
    inter = ratings_to_interactions(df)
    logger.info("loaded %s from %s: %r", v.title, path, inter)
    return inter
