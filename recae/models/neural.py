"""The implicit-feedback autoencoders' base: a decoder over the catalogue, trained on sparse rows.

A subclass provides ``_build(n_items) -> nn.Module``, ``_loss(state, x, rows) -> Tensor``
(the training loss of one dense batch) and ``_decoder_input(x) -> (hidden, output layer)``
(ranking scores are ``output_layer(hidden)``); it may override ``_prepare(X)`` (checks and
statistics of X before the module is built), ``_train_epoch`` when its update is special
(RecVAE alternates) and the state hooks of :class:`~recae.models.trained.Trained`. All randomness (shuffling, dropout, sampling) comes
from the trainer's one seeded ``torch.Generator``, so a fixed ``random_state`` gives identical
results on the same device and the global RNG is never touched.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.batching import DeviceCSR, densify_rows
from ..train import TrainSpec
from .base import Recommender
from .losses import check_sampled_softmax, multinomial_nll, sampled_multinomial_nll
from .ranking import FactoredScores
from .trained import Trained
from .validation import check_valid_metric, validation_score


class NeuralRecommender(Trained, Recommender):
    """Base class of the neural autoencoders (see the module docstring)."""

    _abstract = True  # not a model itself: kept out of MODEL_REGISTRY
    #: Catalogues larger than this are ranked in item chunks of this size (memory ~ users × chunk).
    item_chunk = 1 << 18

    def _check_settings(self) -> None:
        check_valid_metric(self.valid_metric)
        self._check_training_settings()

    # ------------------------------------------------------------------ training
    def _prepare(self, X) -> None:
        """Checks and statistics of X before the module is built (none by default)."""

    def _train_epoch(self, trainer) -> float:
        """One epoch (default: one pass of ``_loss``); RecVAE alternates its phases here."""
        return trainer.run_batches(trainer.state.optimizers, self._loss)

    def _fit(self, X, valid=None, **fit_kwargs):
        self._check_settings()
        self._prepare(X)
        shape = (np.asarray(X.shape, dtype=np.int64), X.indptr.astype(np.int64), X.indices.astype(np.int64))

        def spec(trainer) -> TrainSpec:
            return self._spec(
                DeviceCSR(X, self.device_), self._fingerprint(*shape, X.data.astype(np.float32), valid=valid),
                (lambda: validation_score(self, valid, self.valid_metric)) if valid is not None else None,
                shard_fingerprint=self._fingerprint(np.asarray((0, X.shape[1]), np.int64), np.zeros(1, np.int64)),
                epoch=self._train_epoch, weight_averaging=getattr(self, "weight_averaging", None),
                find_unused_parameters=self.find_unused_parameters)

        self._train(X.shape[1], spec, **fit_kwargs)

    #: Whether some steps leave parameters out of the graph (DDP must then look for them).
    find_unused_parameters = False

    # ------------------------------------------------------------------ sampled softmax
    def _output_nll(self, hidden: torch.Tensor, layer: nn.Linear, x: torch.Tensor, generator) -> torch.Tensor:
        """Multinomial NLL of ``layer(hidden)``: the full softmax, or the sampled one when asked."""
        n_neg = check_sampled_softmax(getattr(self, "sampled_softmax", None), self.n_items_)
        if n_neg is None or n_neg >= self.n_items_:
            return multinomial_nll(layer(hidden), x)
        return sampled_multinomial_nll(hidden, layer, x, n_neg, generator)

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def score_rows(self, X):
        # ranking runs in float32 even with AMP: bfloat16 logits tie too often for a stable top-k
        self.module_.eval()
        hidden, layer = self._decoder_input(densify_rows(X, self.device_))
        return layer(hidden).float()

    @torch.no_grad()
    def factored_rows(self, X):
        self.module_.eval()
        return FactoredScores(*self._decoder_input(densify_rows(X, self.device_)))
