"""The MovieLens releases and where their files are: local data directories, a local archive or GroupLens.

MovieLens is distributed under the GroupLens terms: research use, cite Harper & Konstan
(ACM TiiS 5(4), 2015), no redistribution. recae never ships the files; it reads them from a
data directory (see :mod:`recae.datasets.paths`) or downloads the official archive.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ...exceptions import DataError, DatasetNotFoundError
from ..download import download_and_extract, safe_extract
from ..paths import DATA_ENV, candidate_dirs, find_dataset_dir

logger = logging.getLogger(__name__)

BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Variant:
    """One MovieLens release: its archive, folder and file layout."""

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


VARIANTS = {
    v.key: v
    for v in (
        Variant("100k", "MovieLens 100K", "ml-100k", "ml-100k", "u.data", "tab", "u.item", "latin-1", 100_000),
        Variant("1m", "MovieLens 1M", "ml-1m", "ml-1m", "ratings.dat", "colons", "movies.dat", "latin-1", 1_000_209),
        Variant("10m", "MovieLens 10M", "ml-10m", "ml-10M100K", "ratings.dat", "colons", "movies.dat", "auto", 10_000_054),
        Variant("20m", "MovieLens 20M", "ml-20m", "ml-20m", "ratings.csv", "csv", "movies.csv", "utf-8", 20_000_263),
        Variant("25m", "MovieLens 25M", "ml-25m", "ml-25m", "ratings.csv", "csv", "movies.csv", "utf-8", 25_000_095),
        Variant("latest", "MovieLens Latest (full)", "ml-latest", "ml-latest", "ratings.csv", "csv", "movies.csv", "utf-8", None),
        Variant("latest-small", "MovieLens Latest (small)", "ml-latest-small", "ml-latest-small", "ratings.csv", "csv", "movies.csv", "utf-8", None),
    )
}

_ALIASES = {"10m100k": "10m", "latest_small": "latest-small", "latestsmall": "latest-small", "small": "latest-small"}


def get_variant(variant) -> Variant:
    """The release named ``variant`` (``"100k"``, ``"ml-1m"``, ``"small"``, ...); DataError otherwise."""
    key = str(variant).strip().lower()
    if key.startswith("ml-") or key.startswith("ml_"):
        key = key[3:]
    key = _ALIASES.get(key, key)
    if key not in VARIANTS:
        raise DataError(f"unknown MovieLens variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[key]


def _not_found_message(v: Variant, files, data_dir, reason: str | None = None) -> str:
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
    for d in dirs:  # the two usual slips: a file, or the dataset's own folder, given as the data directory
        if d.is_file():
            msg += f"\n{d} is a file: a data directory is the folder that holds {v.folder}/."
        elif d.name == v.folder and all((d / f).is_file() for f in files):
            msg += f"\n{d} is the {v.folder} folder itself: pass its parent, {d.parent}, as the data directory."
    if reason:
        msg += f"\nDownload failed: {reason}"
    return msg


def locate(v: Variant, files, data_dir=None, download: bool = True, show_progress: bool = True) -> Path:
    """Folder holding all ``files`` of variant ``v``; extracts a local archive or downloads it."""
    files = list(files)
    folder = find_dataset_dir(v.folder, files, data_dir)
    if folder is not None:
        return folder
    # An official archive already sitting in a data directory: extract it in place.
    for base in candidate_dirs(data_dir):
        archive = base / f"{v.archive}.zip"
        if archive.is_file():
            wanted = f"{v.folder}/{files[0]}"
            if zipfile.is_zipfile(archive):  # (safe_extract names a file that is not a zip at all)
                with zipfile.ZipFile(archive) as zf:
                    if wanted not in zf.namelist():  # not unpacked: it would litter the data directory
                        raise DataError(f"{os.fspath(archive)!r} does not hold {wanted}, so it is not the official "
                                        f"{v.title} archive; delete it or replace it with {v.url}")
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
