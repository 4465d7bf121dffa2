"""Datasets: the named datasets, MovieLens loaders, generic file loaders and synthetic logs.

Files are looked up in the ``data_dir`` argument, else ``$RECAE_DATA_DIR``, else
``./datasets``; missing MovieLens archives are downloaded from GroupLens on request.
See ``datasets/README.md`` in the repository for the expected layout and licences, and
:mod:`recae.datasets.registry` for the names ``recae --data`` accepts.
"""

from .files import load_csv, load_log, load_parquet
from .movielens import load_movielens, load_movielens_items, movielens_official_split
from .paths import DATA_ENV, candidate_dirs, find_dataset_dir
from .registry import DATASET_NAMES, REGISTRY, SYNTHETIC, SYNTHETIC_LONGTAIL, SYNTHETIC_ML20M, describe_datasets
from .synthetic import synthetic

__all__ = [
    "DATA_ENV",
    "REGISTRY",
    "DATASET_NAMES",
    "SYNTHETIC",
    "SYNTHETIC_LONGTAIL",
    "SYNTHETIC_ML20M",
    "candidate_dirs",
    "describe_datasets",
    "find_dataset_dir",
    "load_csv",
    "load_log",
    "load_movielens",
    "load_movielens_items",
    "load_parquet",
    "movielens_official_split",
    "synthetic",
]
