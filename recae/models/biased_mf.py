"""Biased matrix factorization for explicit ratings: the baseline AutoRec is compared with.

Koren, Bell, Volinsky, "Matrix Factorization Techniques for Recommender Systems", IEEE
Computer 42(8), 2009: ``r̂_ui = μ + b_u + b_i + p_u·q_i`` with the squared error on observed
ratings and an L2 penalty counted once per rating (as SGD applies it),

    Σ_(u,i) observed [(r_ui − r̂_ui)² + λ(‖p_u‖² + ‖q_i‖² + b_u² + b_i²)],

minimised with Adam over mini-batches of users by the same training loop and masked loss as
AutoRec. ``factors=0`` is the bias-only baseline ``μ + b_u + b_i``.

New users are folded in by the ridge regression of their ratings on the fixed item factors
and biases: exactly the user's own subproblem of the objective above.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.validate import check_int, check_real
from .explicit import ExplicitRecommender
from .params import store_params
from .ratings import masked_sse, ridge_fold_in


class BiasedMF(ExplicitRecommender):
    """Biased matrix factorization trained on observed ratings (see the module docstring).

    Parameters
    ----------
    factors : int, default 64
        Latent dimensions; 0 gives the bias-only model.
    l2 : float, default 0.05
        λ, applied per observed rating.
    init_std : float, default 0.05
        Standard deviation of the initial factors.
    epochs : int, default 25
        Training length without validation data; the cap for early stopping with it.
    batch_size : int, default 256
        Users per update.
    lr : float, default 3e-3
    patience : int or None, default 5
    optimizer, valid_metric, rating_range, amp, device, random_state, show_progress
        As in :class:`~recae.models.autorec.AutoRec`.

    Defaults: tuned on ML-1M validation (seed 0) over l2 ∈ {0.03, 0.05, 0.1}, factors ∈ {64, 128}
    (``benchmarks/autorec_ratings.py``).

    Attributes
    ----------
    module_ : torch.nn.ModuleDict with ``user_factors``, ``item_factors`` (Embedding),
        ``user_bias``, ``item_bias`` (Embedding of width 1)
    global_mean_ : float
        μ, the mean training rating (fixed, not learned).
    """

    def __init__(self, factors=64, l2=0.05, init_std=0.05, epochs=25, batch_size=256, lr=3e-3, optimizer="adam",
                 patience=5, valid_metric="rmse", rating_range=None, amp=False, device="auto", random_state=0,
                 show_progress=None):
        store_params(self, locals())

    own_checks = ("factors", "init_std")  # 0 factors: biases only; 0 spread: factors start at zero

    def _check_settings(self):
        check_int(self.factors, "factors", minimum=0)
        check_real(self.init_std, "init_std", low=0.0)
        super()._check_settings()

    def _build(self, n_items):
        k = int(self.factors)
        module = nn.ModuleDict({"user_factors": nn.Embedding(self.n_users_, k),
                                "item_factors": nn.Embedding(n_items, k),
                                "user_bias": nn.Embedding(self.n_users_, 1),
                                "item_bias": nn.Embedding(n_items, 1)})
        for name in ("user_factors", "item_factors"):
            nn.init.normal_(module[name].weight, std=float(self.init_std))
        for name in ("user_bias", "item_bias"):
            nn.init.zeros_(module[name].weight)
        return module

    def _loss(self, ctx, batch, rows):
        values, mask = batch
        m = self.module_
        rows = rows.to(values.device)
        p, bu = m["user_factors"](rows), m["user_bias"](rows)
        q, bi = m["item_factors"].weight, m["item_bias"].weight
        pred = self.global_mean_ + bu + bi.T + p @ q.T
        sse = masked_sse(pred, values, mask)
        per_user, per_item = mask.sum(dim=1), mask.sum(dim=0)
        reg = (per_user * (p.pow(2).sum(dim=1) + bu.squeeze(1).pow(2))).sum() \
            + (per_item * (q.pow(2).sum(dim=1) + bi.squeeze(1).pow(2))).sum()
        return (sse + self.l2 * reg) / per_user.sum().clamp_min(1.0)

    def _penalty(self, module):
        return 0.0  # the per-rating penalty is part of _loss

    no_local_rows = "its per-user parameters need every user on every rank"

    def _batch_weight(self, ctx, rows):
        return float(ctx.loader.count(rows))  # _loss is a mean over the batch's observed ratings

    # ------------------------------------------------------------------ prediction
    def _pair_scores(self, users, items):
        m = self.module_
        return (self.global_mean_ + m["user_bias"](users).squeeze(1) + m["item_bias"](items).squeeze(1)
                + (m["user_factors"](users) * m["item_factors"](items)).sum(dim=1))

    def _user_scores(self, rows):
        m = self.module_
        r = torch.as_tensor(rows, device=self.device_)
        return (self.global_mean_ + m["user_bias"](r) + m["item_bias"].weight.T
                + m["user_factors"](r) @ m["item_factors"].weight.T)

    def _fold_in_scores(self, X):
        m = self.module_
        features = torch.cat([m["item_factors"].weight, torch.ones(self.n_items_, 1, device=self.device_)], dim=1)
        offset = self.global_mean_ + m["item_bias"].weight.squeeze(1)
        prior = torch.zeros(features.shape[1], device=self.device_)
        return ridge_fold_in(X, features, offset, prior, max(float(self.l2), 1e-6), per_rating=True)

    def _item_vectors(self):
        m = self.module_
        return torch.cat([m["item_factors"].weight, m["item_bias"].weight], dim=1)
