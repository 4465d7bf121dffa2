"""MovieLens loaders (GroupLens), read from a local data directory or downloaded on demand.

MovieLens is distributed under the GroupLens terms: research use, cite Harper & Konstan
(ACM TiiS 5(4), 2015), no redistribution. recae never ships the files; it reads them from a
data directory (see :mod:`recae.datasets.paths`) or downloads the official archive.

- :mod:`.source`: the releases, their files, and finding or downloading them;
- :mod:`.ratings`: :func:`load_movielens` (ratings with timestamps);
- :mod:`.items`: :func:`load_movielens_items` (titles and genres);
- :mod:`.splits`: :func:`movielens_official_split` (ML-100K's u1..u5, ua, ub).
"""

from ..files import load_csv, load_parquet  # re-exported: they were defined here before recae.datasets.files
from .items import ML100K_GENRES, load_movielens_items
from .ratings import load_movielens
from .source import BASE_URL, VARIANTS, get_variant
from .splits import movielens_official_split

__all__ = ["BASE_URL", "ML100K_GENRES", "VARIANTS", "get_variant", "load_movielens", "load_movielens_items",
           "movielens_official_split", "load_csv", "load_parquet"]
