"""MovieLens loaders (GroupLens), read from a local data directory or downloaded on demand.

MovieLens is distributed under the GroupLens terms: research use, cite Harper & Konstan
(ACM TiiS 5(4), 2015), no redistribution. recae never ships the files; it reads them from a
data directory (see :mod:`recae.datasets.paths`) or downloads the official archive.
"""

from __future__ import annotations

import logging
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.interactions import Interactions
from ..data.sparse import build_csr
from ..exceptions import DataError, DatasetNotFoundError
from .download import download_and_extract, safe_extract
from .paths import DATA_ENV, candidate_dirs, find_dataset_dir

logger = logging.getLogger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens"

# ML-100K genre flags of u.item, in file order (u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)


@dataclass(frozen=True)
class _Variant:
    key: str
    title: str
    archive: str  # zip name without .zip
    folder: str  # folder the zip extracts to
    ratings: str  # ratings file inside the folder
    fmt: str  # "tab" | "colons" | "csv"
    items: str  # item metadata file
    items_encoding: str  # "latin-1" | "utf-8" | "auto"
    n_ratings: int | None  # official row count, checked after loading (None: changes over time)

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.archive}.zip"


_VARIANTS = {
    v.key: v
    for v in (
        _Variant("100k", "MovieLens 100K", "ml-100k", "ml-100k", "u.data", "tab", "u.item", "latin-1", 100_000),
        _Variant("1m", "MovieLens 1M", "ml-1m", "ml-1m", "ratings.dat", "colons", "movies.dat", "latin-1", 1_000_209),
        _Variant("10m", "MovieLens 10M", "ml-10m", "ml-10M100K", "ratings.dat", "colons", "movies.dat", "auto", 10_000_054),
        _Variant("20m", "MovieLens 20M", "ml-20m", "ml-20m", "ratings.csv", "csv", "movies.csv", "utf-8", 20_000_263),
        _Variant("25m", "MovieLens 25M", "ml-25m", "ml-25m", "ratings.csv", "csv", "movies.csv", "utf-8", 25_000_095),
        _Variant("latest", "MovieLens Latest (full)", "ml-latest", "ml-latest", "ratings.csv", "csv", "movies.csv", "utf-8", None),
        _Variant("latest-small", "MovieLens Latest (small)", "ml-latest-small", "ml-latest-small", "ratings.csv", "csv", "movies.csv", "utf-8", None),
    )
}

_ALIASES = {"10m100k": "10m", "latest_small": "latest-small", "latestsmall": "latest-small", "small": "latest-small"}

_SPLIT_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def _variant(variant) -> _Variant:
    key = str(variant).strip().lower()
    if key.startswith("ml-") or key.startswith("ml_"):
        key = key[3:]
    key = _ALIASES.get(key, key)
    if key not in _VARIANTS:
        raise DataError(f"unknown MovieLens variant {variant!r}; choose one of {sorted(_VARIANTS)}")
    return _VARIANTS[key]


# ----------------------------------------------------------------------------- locating files
def _not_found_message(v: _Variant, files, data_dir, reason: str | None = None) -> str:
    files = list(files)
    dirs = candidate_dirs(data_dir)
    looked = "\n".join(f"  - {d / v.folder}" for d in dirs)
    first = dirs[0]
    msg = (
        f"{v.title} not found: needed {', '.join(files)} in a folder named {v.folder!r} under a data "
        f"directory. Looked in:\n{looked}\n"
        f"Official archive: {v.url} (extracts to {v.folder}/).\n"
        f"To make it available: download and unzip it into a data directory and set {DATA_ENV}=<that "
        f"directory>, or pass data_dir=<that directory>, or call with download=True to fetch it into "
        f"{first}. MovieLens is under the GroupLens terms: do not redistribute or commit the files."
    )
    if reason:
        msg += f"\nDownload failed: {reason}"
    return msg


def _locate(v: _Variant, files, data_dir=None, download: bool = True, show_progress: bool = True) -> Path:
    """Folder holding all ``files`` of variant ``v``; extracts a local archive or downloads it."""
    files = list(files)
    folder = find_dataset_dir(v.folder, files, data_dir)
    if folder is not None:
        return folder
    # An official archive already sitting in a data directory: extract it in place.
    for base in candidate_dirs(data_dir):
        archive = base / f"{v.archive}.zip"
        if archive.is_file():
            logger.info("extracting %s found in %s", archive.name, base)
            safe_extract(archive, base)
            folder = find_dataset_dir(v.folder, files, base)
            if folder is not None:
                return folder
    if not download:
        raise DatasetNotFoundError(_not_found_message(v, files, data_dir))
    target = candidate_dirs(data_dir)[0]
    logger.info("%s not found locally; downloading %s into %s", v.title, v.url, target)
    try:
        download_and_extract(v.url, target, show_progress=show_progress)
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetNotFoundError(_not_found_message(v, files, data_dir, reason=f"{type(exc).__name__}: {exc}")) from exc
    folder = find_dataset_dir(v.folder, files, target)
    if folder is None:
        raise DatasetNotFoundError(
            _not_found_message(v, files, data_dir, reason=f"the archive did not contain {v.folder}/{files[0]}")
        )
    return folder


# ----------------------------------------------------------------------------- parsing
_RATING_DTYPES = {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}


def _read_ratings(path: Path, fmt: str) -> pd.DataFrame:
    """Columns user, item, rating, timestamp from one MovieLens ratings file."""
    try:
        if fmt == "tab":
            df = pd.read_csv(path, sep="\t", header=None, names=list(_RATING_DTYPES), dtype=_RATING_DTYPES)
        elif fmt == "colons":
            # "u::i::r::t" split on single ':' gives 7 fields with empty ones in between; the C
            # parser is ~50x faster than sep="::" (which needs the python engine).
            df = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4, 6],
                             names=["user", "_1", "item", "_2", "rating", "_3", "timestamp"], dtype=_RATING_DTYPES)
            df = df[["user", "item", "rating", "timestamp"]]
        elif fmt == "csv":
            df = pd.read_csv(path, header=0, dtype={"userId": np.int64, "movieId": np.int64,
                                                    "rating": np.float32, "timestamp": np.int64})
            missing = {"userId", "movieId", "rating", "timestamp"} - set(df.columns)
            if missing:
                raise DataError(f"{path} lacks column(s) {sorted(missing)}; got {list(df.columns)}")
            df = df.rename(columns={"userId": "user", "movieId": "item"})[list(_RATING_DTYPES)]
        else:  # pragma: no cover - internal table
            raise AssertionError(fmt)
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"could not parse MovieLens ratings file {path}: {exc}. The file may be truncated "
                        "or corrupted; delete its folder and download it again.") from None
    return df


def _check_count(df: pd.DataFrame, expected: int | None, path: Path) -> None:
    if expected is not None and len(df) != expected:
        raise DataError(
            f"{path} has {len(df):,} ratings; the official release has {expected:,}. The file is "
            "truncated or modified; delete its folder and download it again."
        )


def _to_interactions(df: pd.DataFrame) -> Interactions:
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
    v = _variant(variant)
    folder = _locate(v, [v.ratings], data_dir, download, show_progress)
    path = folder / v.ratings
    df = _read_ratings(path, v.fmt)
    _check_count(df, v.n_ratings, path)
    inter = _to_interactions(df)
    logger.info("loaded %s from %s: %r", v.title, path, inter)
    return inter


# ----------------------------------------------------------------------------- item metadata
def _read_text(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    if encoding == "auto":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    return raw.decode(encoding)


def _parse_colon_movies(text: str, path: Path) -> pd.DataFrame:
    items, titles, genres = [], [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, sep1, rest = line.partition("::")
        title, sep2, genre = rest.rpartition("::")
        if not (sep1 and sep2):
            raise DataError(f"{path}:{lineno}: expected 'MovieID::Title::Genres', got {line[:80]!r}")
        try:
            items.append(int(head))
        except ValueError:
            raise DataError(f"{path}:{lineno}: movie id {head!r} is not an integer") from None
        titles.append(title)
        genres.append(genre)
    return pd.DataFrame({"item": np.asarray(items, dtype=np.int64), "title": titles, "genres": genres})


def load_movielens_items(variant: str = "100k", data_dir=None, download: bool = True) -> pd.DataFrame:
    """Movie metadata of a MovieLens release.

    Parameters
    ----------
    variant : str, default "100k"
        As for :func:`load_movielens`.
    data_dir : str or os.PathLike, optional
        Data directory (see :func:`load_movielens`).
    download : bool, default True
        Download the archive when the metadata file is absent.

    Returns
    -------
    pandas.DataFrame
        One row per movie (shape (n_movies, 3)) with columns ``item`` (int64, the raw
        MovieLens id used by :func:`load_movielens`), ``title`` (str, decoded with the
        file's encoding: latin-1 for 100K and 1M) and ``genres`` (``|``-joined genre names;
        for ML-100K built from the 19 genre flags of ``u.item``). Lists every movie of the
        catalogue, including movies without ratings.
    """
    v = _variant(variant)
    folder = _locate(v, [v.items], data_dir, download)
    path = folder / v.items
    if v.key == "100k":
        df = pd.read_csv(path, sep="|", header=None, encoding="latin-1", dtype={0: np.int64, 1: str},
                         keep_default_na=False)
        if df.shape[1] != 5 + len(ML100K_GENRES):
            raise DataError(f"{path} has {df.shape[1]} fields per line; expected {5 + len(ML100K_GENRES)}")
        flags = df.iloc[:, 5:].to_numpy(dtype=bool)
        names = np.asarray(ML100K_GENRES, dtype=object)
        genres = ["|".join(names[row]) for row in flags]
        out = pd.DataFrame({"item": df[0].to_numpy(np.int64), "title": df[1].astype(str).to_numpy(),
                            "genres": genres})
    elif v.items.endswith(".csv"):
        df = pd.read_csv(path, encoding=v.items_encoding, dtype={"movieId": np.int64, "title": str, "genres": str},
                         keep_default_na=False)
        out = df.rename(columns={"movieId": "item"})[["item", "title", "genres"]]
    else:
        out = _parse_colon_movies(_read_text(path, v.items_encoding), path)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------- official splits
def _fold_name(fold) -> str:
    if isinstance(fold, (int, np.integer)) and not isinstance(fold, bool):
        name = f"u{int(fold)}"
    else:
        name = str(fold).strip().lower()
        if name in ("a", "b"):
            name = "u" + name
    if name not in _SPLIT_FOLDS:
        raise DataError(f"unknown ML-100K split {fold!r}; choose 1..5, 'u1'..'u5', 'ua' or 'ub'")
    return name


def _on_index(df: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> Interactions:
    """Interactions of ``df`` (ids all present in the given id arrays) on that exact index."""
    inter = _to_interactions(df)  # resolves duplicate rows the usual way
    rows = pd.Index(user_ids).get_indexer(inter.user_ids)
    cols = pd.Index(item_ids).get_indexer(inter.item_ids)
    if (rows < 0).any() or (cols < 0).any():  # pragma: no cover - callers filter first
        raise DataError("internal error: ids missing from the target index")
    coo = inter.matrix.tocoo()
    # tocoo keeps CSR entry order, so timestamps line up with coo entries before reordering
    m, order = build_csr(rows[coo.row], cols[coo.col], coo.data, (len(user_ids), len(item_ids)))
    return Interactions(m, user_ids, item_ids, inter.timestamps[order], has_ratings=True)


def movielens_official_split(fold, data_dir=None, download: bool = True, unseen: str = "drop") -> tuple[Interactions, Interactions]:
    """One of ML-100K's official train/test splits (``u1``..``u5``, ``ua``, ``ub``).

    Parameters
    ----------
    fold : int or str
        ``1``..``5`` (or ``"u1"``..``"u5"``): the 5-fold 80/20 splits; ``"ua"``/``"ub"``
        (or ``"a"``/``"b"``): exactly 10 ratings per user held out.
    data_dir : str or os.PathLike, optional
        Data directory holding ``ml-100k/`` (see :func:`load_movielens`).
    download : bool, default True
        Download ML-100K when absent.
    unseen : {"drop", "keep"}, default "drop"
        ``"drop"``: both logs use train's users and items (the index a model fitted on
        train knows); test ratings of users or items absent from train are dropped and
        their number logged (u1.test has 20,000 rows, of which a few dozen are of items
        that u1.base lacks). ``"keep"``: both logs use the union of users and items of the
        two files, so no test rating is lost (train may then have empty item columns).

    Returns
    -------
    train, test : Interactions
        Explicit ratings with timestamps, both of shape (n_users, n_items) with identical
        ``user_ids`` and ``item_ids``.
    """
    name = _fold_name(fold)
    if unseen not in ("drop", "keep"):
        raise DataError(f"unseen must be 'drop' or 'keep'; got {unseen!r}")
    v = _VARIANTS["100k"]
    base_file, test_file = f"{name}.base", f"{name}.test"
    folder = _locate(v, [base_file, test_file], data_dir, download)
    base = _read_ratings(folder / base_file, "tab")
    test = _read_ratings(folder / test_file, "tab")
    if unseen == "drop":
        train = _to_interactions(base)
        known = test["user"].isin(train.user_ids).to_numpy() & test["item"].isin(train.item_ids).to_numpy()
        n_drop = int((~known).sum())
        if n_drop:
            logger.info("%s: dropped %d of %d test ratings whose user or item is absent from %s",
                        test_file, n_drop, len(test), base_file)
        test_i = _on_index(test[known], train.user_ids, train.item_ids)
        return train, test_i
    users = np.unique(np.concatenate([base["user"].to_numpy(), test["user"].to_numpy()]))
    items = np.unique(np.concatenate([base["item"].to_numpy(), test["item"].to_numpy()]))
    return _on_index(base, users, items), _on_index(test, users, items)


# ----------------------------------------------------------------------------- generic files
def load_csv(path, **kwargs) -> Interactions:
    """Read a delimited interaction log; thin wrapper over :meth:`Interactions.from_csv`.

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
    """Read a Parquet interaction log; thin wrapper over :meth:`Interactions.from_parquet`.

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
