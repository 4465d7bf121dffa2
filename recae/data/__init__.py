"""Data layer: interaction logs, splits and sparse batching."""

from .interactions import Interactions
from .splits import (HoldoutSplit, StrongSplit, holdout_split, strong_generalization_split, temporal_split,
                     validation_split)

__all__ = [
    "Interactions",
    "HoldoutSplit",
    "StrongSplit",
    "holdout_split",
    "strong_generalization_split",
    "temporal_split",
    "validation_split",
]
