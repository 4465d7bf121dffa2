"""RecVAE: Mult-VAE with a denser encoder, a composite prior and alternating updates.

Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko, "RecVAE: a New Variational Autoencoder
for Top-N Recommendations with Implicit Feedback", WSDM 2020. Encoder: five dense layers
(swish, LayerNorm, residual sums of all earlier layers); decoder: one linear layer. The
prior mixes a standard normal, the previous epoch's posterior and a wide normal; the KL
weight is per user, β_u = γ·|x_u|. Each epoch updates the encoder ``n_enc_epochs`` times
(with input dropout), refreshes the prior's copy of the encoder, then updates the decoder
``n_dec_epochs`` times (no dropout).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..exceptions import DataError
from .layers import SparseInputLinear, dropout, gaussian_like, l2_normalize
from .losses import log_normal
from .neural import NeuralRecommender
from .params import store_params


class RecVAEEncoder(nn.Module):
    def __init__(self, n_items: int, hidden: int, latent: int, n_layers: int = 5, ln_eps: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList([SparseInputLinear(n_items, hidden) if i == 0 else nn.Linear(hidden, hidden)
                                     for i in range(n_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden, eps=ln_eps) for _ in range(n_layers)])
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x, p: float = 0.0, generator=None):
        h = dropout(l2_normalize(x), p, generator)
        outs = []
        for layer, norm in zip(self.layers, self.norms):
            pre = layer(h) + (sum(outs) if outs else 0.0)
            h = norm(pre * torch.sigmoid(pre))  # swish
            outs.append(h)
        return self.mu(h), self.logvar(h)


class RecVAE(NeuralRecommender):
    """RecVAE (see the module docstring).

    Parameters
    ----------
    hidden_dim : int, default 600
    latent_dim : int, default 200
    dropout : float, default 0.5
        Input dropout during encoder updates.
    gamma : float, default 0.005
        Per-user KL weight β_u = γ·|x_u|.
    mixture_weights : tuple of 3 floats, default (0.15, 0.75, 0.1)
        Weights of the standard, previous-posterior and wide (log σ² = 10) prior components.
    n_enc_epochs, n_dec_epochs : int, default 3, 1
        Passes over the data per epoch for the encoder and the decoder.
    epochs, batch_size, lr, optimizer, weight_decay, l1, patience, valid_metric, amp, device,
    random_state, show_progress
        As in :class:`~recae.models.dae.MultDAE` (one epoch = all the passes above).
    sampled_softmax : None, float in (0, 1) or int, default None
        A share or count of the catalogue drawn per batch to estimate the softmax
        normaliser (:mod:`recae.models.losses`); None: the full softmax.

    Under torchrun the decoder phase leaves the encoder out of the graph, so DDP runs with
    ``find_unused_parameters=True``; the encoder phase also all-reduces the decoder's
    (unused) gradients, a cost of h·I floats per step.
    """

    def __init__(self, hidden_dim=600, latent_dim=200, dropout=0.5, gamma=0.005, mixture_weights=(0.15, 0.75, 0.1),
                 n_enc_epochs=3, n_dec_epochs=1, epochs=100, batch_size=500, lr=5e-4, optimizer="adam", weight_decay=0.0,
                 l1=0.0, patience=10, valid_metric="ndcg@100", amp="auto", device="auto", random_state=0,
                 show_progress=None, sampled_softmax=None):
        store_params(self, locals())

    def _build(self, n_items):
        enc = RecVAEEncoder(n_items, self.hidden_dim, self.latent_dim)
        old = copy.deepcopy(enc).requires_grad_(False)
        return nn.ModuleDict({"encoder": enc, "prior_encoder": old, "decoder": nn.Linear(self.latent_dim, n_items)})

    def _check_settings(self) -> None:
        super()._check_settings()
        w = self.mixture_weights
        if len(w) != 3 or any(not x > 0 for x in w):
            raise DataError(f"mixture_weights must be 3 positive numbers; got {w!r}")

    def _optimizers(self, module):
        return [self._make_optimizer(module["encoder"].parameters()),
                self._make_optimizer(module["decoder"].parameters())]

    def _log_prior(self, x, z):
        post_mu, post_logvar = self.module_["prior_encoder"](x)
        zeros = torch.zeros_like(z)
        parts = [log_normal(z, zeros, zeros), log_normal(z, post_mu, post_logvar), log_normal(z, zeros, zeros + 10.0)]
        weighted = [p + math.log(w) for p, w in zip(parts, self.mixture_weights)]
        return torch.logsumexp(torch.stack(weighted, dim=-1), dim=-1)

    find_unused_parameters = True

    def _encoder_loss(self, ctx, x, rows):
        mu, logvar = self.module_["encoder"](x, self.dropout, ctx.noise)
        z = mu + gaussian_like(mu, ctx.noise) * (0.5 * logvar).exp()
        if self.sampled_softmax is None:
            mll = (torch.log_softmax(self.module_["decoder"](z).float(), dim=1) * x).sum(dim=1)
            kl = (log_normal(z, mu, logvar) - self._log_prior(x, z)).sum(dim=1)
            return -(mll - self.gamma * x.sum(dim=1) * kl).mean()
        # the mean of −mll is the (sampled) NLL; the KL term is unchanged
        kl = (log_normal(z, mu, logvar) - self._log_prior(x, z)).sum(dim=1)
        nll = self._output_nll(z, self.module_["decoder"], x, ctx.noise)
        return nll + (self.gamma * x.sum(dim=1) * kl).mean()

    def _decoder_loss(self, ctx, x, rows):
        # the encoder is not updated in this phase, so its graph is not needed
        with torch.no_grad():
            mu, logvar = self.module_["encoder"](x)
            z = mu + gaussian_like(mu, ctx.noise) * (0.5 * logvar).exp()
        if self.sampled_softmax is not None:
            return self._output_nll(z, self.module_["decoder"], x, ctx.noise)
        return -(torch.log_softmax(self.module_["decoder"](z).float(), dim=1) * x).sum(dim=1).mean()

    _loss = _encoder_loss  # what the TrainSpec names; _train_epoch runs both phases

    def _train_epoch(self, trainer):
        enc_opt, dec_opt = trainer.state.optimizers
        for _ in range(self.n_enc_epochs):
            loss = trainer.run_batches([enc_opt], self._encoder_loss)
        self.module_["prior_encoder"].load_state_dict(self.module_["encoder"].state_dict())
        for _ in range(self.n_dec_epochs):
            trainer.run_batches([dec_opt], self._decoder_loss)
        return loss

    def _decoder_input(self, x):
        mu, _ = self.module_["encoder"](x)
        return mu, self.module_["decoder"]
