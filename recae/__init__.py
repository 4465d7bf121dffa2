"""recae: collaborative-filtering autoencoders with a sparse data layer and honest evaluation.

>>> from recae import Interactions, EASE
>>> model = EASE().fit(Interactions.from_pandas(df, user="user", item="item"))
>>> ids, scores = model.recommend(user_id, n=10)

The image mode (``ImageAutoencoder``), ``recae.anomaly``, ``recae.distributed`` and
``recae.bench`` are imported on first use, so ``import recae`` loads only the recommender side.
"""

import importlib

from .version import __version__

from . import metrics
from .data import (HoldoutSplit, Interactions, StrongSplit, holdout_split, strong_generalization_split,
                   temporal_split, validation_split)
from .evaluate import evaluate
from .exceptions import (ConversionWarning, DataError, DataWarning, DatasetNotFoundError, MemoryBudgetError, ModelFileError,
                         NotFittedError, RecaeError, ShapeError, TrainingError, UnknownIdError)
from .models import params as _params
from .models import CDAE, AutoRec, BiasedMF, Blend, ImplicitALS, ImplicitBPR, EASE, FactorEASE, LinearAE, MultDAE, MultVAE, Popularity, RecVAE, Recommender, SparseEASE

#: Public names imported on first use: name -> module holding it (the name itself for a submodule).
LAZY = {"ImageAutoencoder": "recae.image.model", "anomaly": "recae.anomaly", "distributed": "recae.distributed",
        "bench": "recae.bench", "datasets": "recae.datasets",
        "tune": "recae.tuning.api"}

__all__ = [
    "__version__",
    "Interactions", "HoldoutSplit", "StrongSplit", "holdout_split", "strong_generalization_split",
    "temporal_split", "validation_split", "evaluate", "metrics", "anomaly", "distributed", "ImageAutoencoder", "load", "AutoRec", "BiasedMF", "EASE", "FactorEASE", "LinearAE", "Popularity", "MultDAE", "MultVAE", "CDAE", "RecVAE", "SparseEASE", "Blend", "ImplicitALS", "ImplicitBPR", "Recommender",
    "RecaeError", "ConversionWarning", "DataWarning", "DataError", "ShapeError", "UnknownIdError", "NotFittedError",
    "ModelFileError", "MemoryBudgetError", "DatasetNotFoundError", "TrainingError",
]


def load(path, device: str | None = None):
    """Load any recae model file, a recommender or an image model (:func:`recae.models.params.load`).

    The image model is registered first: ``import recae`` imports it only on first use.
    """
    importlib.import_module("recae.image.model")
    return _params.load(path, device)


def __getattr__(name: str):
    """``recae.ImageAutoencoder``, ``recae.anomaly``, ... imported when first asked for."""
    if name not in LAZY:
        raise AttributeError(f"module 'recae' has no attribute {name!r}")
    module = importlib.import_module(LAZY[name])
    value = module if LAZY[name] == f"recae.{name}" else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))
