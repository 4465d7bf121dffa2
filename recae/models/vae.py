"""Mult-VAE: a variational autoencoder with a multinomial likelihood and an annealed KL weight.

Liang, Krishnan, Hoffman, Jebara, "Variational Autoencoders for Collaborative Filtering",
WWW 2018. Encoder I→600→(μ, log σ²) of 200, decoder 200→600→I, tanh; input L2-normalised
then dropout; loss = multinomial NLL + β·KL with β = min(β_cap, step / anneal_steps);
ranking uses the decoder of μ (no sampling).
"""

from __future__ import annotations

from torch import nn

from .layers import dropout, gaussian_like, init_weights, l2_normalize, mlp
from .losses import gaussian_kl, multinomial_nll
from .neural import NeuralRecommender
from .params import store_params


class MultVAE(NeuralRecommender):
    """Variational autoencoder I → hidden → latent → hidden → I (Mult-VAE).

    Parameters
    ----------
    hidden_dims : tuple of int, default (600,)
    latent_dim : int, default 200
    dropout : float, default 0.8
        Input dropout; 0.8 beat the paper's 0.5 (and 0.7, 0.85, 0.9) on ML-1M validation:
        small data overfits.
    activation : str, default "tanh"
    beta_cap : float, default 0.2
        Largest KL weight.
    anneal_steps : int, default 20000
        Optimizer updates over which β rises linearly from 0 to ``beta_cap`` (0: constant cap).
    batch_size : int, default 128
        Users per update (the paper's 500 scored lower on ML-1M validation with weight averaging).
    epochs, lr, optimizer, weight_decay, l1, patience, valid_metric, amp, device,
    random_state, show_progress
        As in :class:`~recae.models.dae.MultDAE`.
    sampled_softmax : None, float in (0, 1) or int, default None
        A share or count of the catalogue drawn per batch to estimate the softmax
        normaliser (:mod:`recae.models.losses`); None: the full softmax.
    weight_averaging : float in [0, 1) or None, default 0.9
        Decay, per pass over the training users, of a moving average of the weights updated
        after every step (:class:`recae.train.WeightAverage`; 0.9 ≈ the last 10 passes).
        Validation, early stopping and the fitted model use the average. None or 0 uses the
        last iterate. On ML-1M validation averaging helped and the decay hardly mattered
        (``benchmarks/results/multvae_tuning_ml1m.md``).
    """

    def __init__(self, hidden_dims=(600,), latent_dim=200, dropout=0.8, activation="tanh", beta_cap=0.2,
                 anneal_steps=20000, epochs=200, batch_size=128, lr=1e-3, optimizer="adam", weight_decay=0.0, l1=0.0,
                 patience=30, valid_metric="ndcg@100", amp="auto", device="auto", random_state=0, show_progress=None,
                 sampled_softmax=None, weight_averaging=0.9):
        store_params(self, locals())

    def _build(self, n_items):
        enc = [n_items, *self.hidden_dims]
        module = nn.ModuleDict({
            "encoder": mlp(enc, self.activation, last_act=True, sparse_input=True),
            "to_latent": nn.Linear(enc[-1], 2 * self.latent_dim),
            "decoder": mlp([self.latent_dim, *self.hidden_dims[::-1], n_items], self.activation),
        })
        init_weights(module)
        return module

    def _encode(self, x, generator=None):
        h = self.module_["encoder"](dropout(l2_normalize(x), self.dropout, generator))
        mu, logvar = self.module_["to_latent"](h).chunk(2, dim=1)
        return mu, logvar

    def beta(self, step: int) -> float:
        """KL weight after ``step`` optimizer updates."""
        if not self.anneal_steps:
            return float(self.beta_cap)
        return min(float(self.beta_cap), step / float(self.anneal_steps))

    def _loss(self, ctx, x, rows):
        mu, logvar = self._encode(x, ctx.noise)
        z = mu + gaussian_like(mu, ctx.noise) * (0.5 * logvar).exp()
        if self.sampled_softmax is None:
            nll = multinomial_nll(self.module_["decoder"](z), x)
        else:
            decoder = self.module_["decoder"]
            nll = self._output_nll(decoder[:-1](z), decoder[-1], x, ctx.noise)
        return nll + self.beta(ctx.step) * gaussian_kl(mu.float(), logvar.float())

    def _decoder_input(self, x):
        mu, _ = self._encode(x)
        return self.module_["decoder"][:-1](mu), self.module_["decoder"][-1]
