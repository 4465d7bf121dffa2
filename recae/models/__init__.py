"""recae models; every one follows :class:`recae.models.base.Recommender`."""

from .base import MODEL_REGISTRY, Recommender
from .ease import EASE
from .popularity import Popularity

__all__ = ["Recommender", "MODEL_REGISTRY", "EASE", "Popularity"]
