"""MovieLens movie metadata: titles and genres of every movie of a release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...exceptions import DataError
from .source import get_variant, locate

# ML-100K genre flags of u.item, in file order (u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)


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
        As for :func:`~recae.datasets.load_movielens`.
    data_dir : str or os.PathLike, optional
        Data directory (see :func:`~recae.datasets.load_movielens`).
    download : bool, default True
        Download the archive when the metadata file is absent.

    Returns
    -------
    pandas.DataFrame
        One row per movie (shape (n_movies, 3)) with columns ``item`` (int64, the raw
        MovieLens id used by :func:`~recae.datasets.load_movielens`), ``title`` (str, decoded
        with the file's encoding: latin-1 for 100K and 1M) and ``genres`` (``|``-joined genre
        names; for ML-100K built from the 19 genre flags of ``u.item``). Lists every movie of
        the catalogue, including movies without ratings.
    """
    v = get_variant(variant)
    folder = locate(v, [v.items], data_dir, download)
    path = folder / v.items
    if v.key == "100k":
        df = pd.read_csv(path, sep="|", header=None, encoding="latin-1", dtype={0: np.int64, 1: str},
                         keep_default_na=False)
        if df.shape[1] != 5 + len(ML100K_GENRES):
            raise DataError(f"{path} has {df.shape[1]} fields per line; expected {5 + len(ML100K_GENRES)}")
        text = df.iloc[:, 5:].astype(str)
        bad = ~text.isin(["0", "1"]).to_numpy()
        if bad.any():  # a blank flag read as text would otherwise count as set ('0' is a true string)
            row = int(bad.any(axis=1).argmax())
            raise DataError(f"{path}, line {row + 1}: the 19 genre flags must each be 0 or 1; got "
                            f"{text.iloc[row].tolist()} (a truncated or modified file: delete its folder and "
                            "download it again)")
        flags = (text == "1").to_numpy()
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
