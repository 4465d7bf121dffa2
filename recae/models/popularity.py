"""Popularity: every user gets the items most users interacted with. The baseline to beat."""

from __future__ import annotations

import numpy as np
import torch

from .base import Recommender
from .params import store_params


class Popularity(Recommender):
    """Rank items by the number of training users who interacted with them.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"

    Attributes
    ----------
    item_counts_ : torch.Tensor of shape (n_items,)
        Number of training users with a (nonzero) entry for each item.

    Notes
    -----
    ``similar_items(i)`` folds in the one-item history ``[i]``: the same most popular items for
    every ``i`` (popularity knows no item-item structure).
    """

    def __init__(self, device="auto"):
        store_params(self, locals())

    def _fit(self, X, valid=None):
        counts = np.bincount(X.indices[X.data != 0], minlength=X.shape[1]).astype(np.float32)
        self.item_counts_ = torch.as_tensor(counts, device=self.device_)

    def score_rows(self, X):
        return self.item_counts_.expand(X.shape[0], -1).clone()

    def get_state(self):
        return {"item_counts": self.item_counts_}

    def set_state(self, tensors):
        self.item_counts_ = tensors["item_counts"]
