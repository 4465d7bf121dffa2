"""recae: collaborative-filtering autoencoders with a sparse data layer and honest evaluation.

>>> from recae import Interactions, EASE
>>> model = EASE().fit(Interactions.from_pandas(df, user="user", item="item"))
>>> ids, scores = model.recommend(user_id, n=10)
"""

from .version import __version__

from . import anomaly, distributed, metrics
from .data import (HoldoutSplit, Interactions, StrongSplit, holdout_split, strong_generalization_split,
                   temporal_split)
from .evaluate import evaluate
from .exceptions import (ConversionWarning, DataError, DatasetNotFoundError, MemoryBudgetError, ModelFileError, NotFittedError,
                         RecaeError, ShapeError, TrainingError, UnknownIdError)
from .image import ImageAutoencoder
from .models.params import load
from .models import CDAE, AutoRec, BiasedMF, Blend, ImplicitALS, ImplicitBPR, EASE, LinearAE, MultDAE, MultVAE, Popularity, RecVAE, Recommender

__all__ = [
    "__version__",
    "Interactions", "HoldoutSplit", "StrongSplit", "holdout_split", "strong_generalization_split",
    "temporal_split", "evaluate", "metrics", "anomaly", "distributed", "ImageAutoencoder", "load", "AutoRec", "BiasedMF", "EASE", "LinearAE", "Popularity", "MultDAE", "MultVAE", "CDAE", "RecVAE", "Blend", "ImplicitALS", "ImplicitBPR", "Recommender",
    "RecaeError", "ConversionWarning", "DataError", "ShapeError", "UnknownIdError", "NotFittedError", "ModelFileError",
    "MemoryBudgetError", "DatasetNotFoundError", "TrainingError",
]
