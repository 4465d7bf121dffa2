"""The named datasets of ``recae --data NAME`` and ``recae bench``, each with one meaning.

========================  =====================================================================
name                      what it loads
========================  =====================================================================
``ml-100k`` … ``ml-25m``  the MovieLens release (:func:`~recae.datasets.load_movielens`), from a
                          data directory; downloaded only when asked (``recae --download``)
``synthetic``             :data:`SYNTHETIC`: a seeded planted-structure log of 2,000 users ×
                          1,000 items, 40,000 ratings (1-5 stars) with timestamps
``synthetic-ml20m``       :data:`SYNTHETIC_ML20M`: the same generator at ML-20M's shape, 136,677
                          users × 20,108 items, 10,000,000 ratings with timestamps
``synthetic-longtail``    :data:`SYNTHETIC_LONGTAIL`: the long-tail generator at a large catalogue's
                          shape, 100,000 users × 250,000 items, 2,000,000 positives with timestamps
========================  =====================================================================

Any other name is the path of a log file, read by :func:`~recae.datasets.load_log`.
:func:`load` is the one entry point of the ``recae`` command and of
:func:`recae.bench.load_dataset`; :func:`describe_datasets` lists the names for help texts and docs.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..data.interactions import Interactions
from ..data.validate import as_path
from ..exceptions import DataError
from .files import LOG_SUFFIXES, format_suffix, load_log
from .movielens import load_movielens
from .synthetic import synthetic

#: The ``synthetic`` dataset: arguments of :func:`~recae.datasets.synthetic` besides the seed.
SYNTHETIC = {"n_users": 2000, "n_items": 1000}
#: The ``synthetic-ml20m`` dataset: the shape of ML-20M's positives (ratings >= 4, users with >= 5 of
#: them; Liang et al. 2018).
SYNTHETIC_ML20M = {"n_users": 136_677, "n_items": 20_108, "n_interactions": 10_000_000}
#: The ``synthetic-longtail`` dataset: a large catalogue's shape (Zipf popularity, about half the items
#: seen at most twice, taste groups), from ``synthetic(..., popularity="longtail")``.
SYNTHETIC_LONGTAIL = {"n_users": 100_000, "n_items": 250_000, "n_interactions": 2_000_000, "popularity": "longtail"}
#: The generated datasets' names.
SYNTHETIC_NAMES = ("synthetic", "synthetic-ml20m", "synthetic-longtail")


@dataclass(frozen=True)
class Dataset:
    """A named dataset.

    ``load(data_dir, download, show_progress, random_state)`` returns its Interactions
    (MovieLens ignores ``random_state``, the synthetic logs everything else);
    ``description`` is how the ``recae`` command names what it loaded, ``summary`` one line
    for help texts and docs.
    """

    name: str
    description: str
    summary: str
    load: Callable[..., Interactions]


def _movielens(variant: str):
    def load(data_dir=None, download: bool = False, show_progress: bool = True, random_state=0) -> Interactions:
        return load_movielens(variant, data_dir=data_dir, download=download, show_progress=show_progress)
    return load


def _synthetic(shape: dict):
    def load(data_dir=None, download: bool = False, show_progress: bool = True, random_state=0) -> Interactions:
        return synthetic(**shape, random_state=random_state)
    return load


def _movielens_entry(variant: str, shape: str) -> Dataset:
    return Dataset(f"ml-{variant}", f"MovieLens {variant.upper()}",
                   f"MovieLens {variant.upper()} ratings with timestamps ({shape}; GroupLens terms, not shipped)",
                   _movielens(variant))


REGISTRY: dict[str, Dataset] = {d.name: d for d in (
    _movielens_entry("100k", "943 users × 1,682 items, 100,000 ratings"),
    _movielens_entry("1m", "6,040 × 3,706, 1,000,209 ratings"),
    _movielens_entry("10m", "69,878 × 10,677, 10,000,054 ratings"),
    _movielens_entry("20m", "138,493 × 26,744, 20,000,263 ratings"),
    _movielens_entry("25m", "162,541 × 59,047, 25,000,095 ratings"),
    Dataset("synthetic", "synthetic log (seeded)",
            "seeded synthetic log with planted taste clusters: 2,000 users × 1,000 items, 40,000 ratings "
            "(1-5 stars) with timestamps", _synthetic(SYNTHETIC)),
    Dataset("synthetic-ml20m", "synthetic ML-20M-shaped log (136,677 × 20,108, 10M positives)",
            "the synthetic generator at ML-20M's shape: 136,677 users × 20,108 items, 10,000,000 ratings "
            "(1-5 stars; keep them all with --binarize 0) with timestamps", _synthetic(SYNTHETIC_ML20M)),
    Dataset("synthetic-longtail", "synthetic long-tail log (100,000 × 250,000, 2M positives)",
            "the long-tail generator at a large catalogue's shape: 100,000 users × 250,000 items, 2,000,000 "
            "positives (Zipf popularity, half the items seen at most twice, taste groups) with timestamps",
            _synthetic(SYNTHETIC_LONGTAIL)),
)}

#: The dataset names, in the order help texts list them.
DATASET_NAMES = tuple(REGISTRY)


def describe_datasets(markdown: bool = False) -> str:
    """One line per named dataset: ``name: summary`` (a Markdown list with ``markdown=True``)."""
    if markdown:
        return "\n".join(f"- `{d.name}`: {d.summary}" for d in REGISTRY.values())
    width = max(map(len, REGISTRY))
    return "\n".join(f"  {d.name:<{width}}  {d.summary}" for d in REGISTRY.values())


def load(name, *, data_dir=None, download: bool = False, show_progress: bool = True, random_state=0,
         sep: str | None = None, user: str = "user", item: str = "item", rating: str | None = None,
         timestamp: str | None = None, encoding: str | None = None) -> tuple[Interactions, str]:
    """``(interactions, description)`` for a dataset name or a log file's path.

    Parameters
    ----------
    name : str or os.PathLike
        One of :data:`DATASET_NAMES`, else the path of a log read by
        :func:`~recae.datasets.load_log` with ``sep``, ``encoding`` and the column names.
    data_dir, download, show_progress
        Where MovieLens is looked up, whether a missing release is downloaded, and progress
        bars (see :func:`~recae.datasets.load_movielens`).
    random_state : int, default 0
        Seed of the synthetic logs.

    Returns
    -------
    interactions : Interactions
        The log as stored: ratings stay ratings (binarize them for implicit models).
    description : str
        What was loaded, e.g. ``"MovieLens 1M"`` or the path.
    """
    if isinstance(name, str) and name in REGISTRY:
        spec = REGISTRY[name]
        return spec.load(data_dir=data_dir, download=download, show_progress=show_progress,
                         random_state=random_state), spec.description
    path = as_path(name, "dataset")
    if not os.path.exists(path) and format_suffix(path) not in LOG_SUFFIXES:  # ratings.csv.gz is a log too
        near = difflib.get_close_matches(str(name).lower(), DATASET_NAMES, n=1, cutoff=0.7)
        raise DataError(f"unknown dataset {path!r}: not one of {list(DATASET_NAMES)}, and no such file "
                        f"(a log path ends in one of {list(LOG_SUFFIXES)})" + (f"; did you mean {near[0]!r}?" if near else ""))
    return (load_log(path, sep=sep, user=user, item=item, rating=rating, timestamp=timestamp, encoding=encoding),
            str(Path(path)))
