"""Datasets: MovieLens loaders, generic file loaders and synthetic logs.

Files are looked up in the ``data_dir`` argument, else ``$RECAE_DATA_DIR``, else
``./datasets``; missing MovieLens archives are downloaded from GroupLens on request.
See ``datasets/README.md`` in the repository for the expected layout and licences.
"""

from .movielens import load_csv, load_movielens, load_movielens_items, load_parquet, movielens_official_split
from .paths import DATA_ENV, candidate_dirs, find_dataset_dir
from .synthetic import synthetic

__all__ = [
    "DATA_ENV",
    "candidate_dirs",
    "find_dataset_dir",
    "load_csv",
    "load_movielens",
    "load_movielens_items",
    "load_parquet",
    "movielens_official_split",
    "synthetic",
]
