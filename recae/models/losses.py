"""Losses of the implicit-feedback autoencoders: the multinomial likelihood, exact or sampled, and KL terms.

``sampled_softmax`` (a hyper-parameter of every decoder model): None trains with the full
softmax over all items. A share (or count) of the catalogue makes each batch estimate the
softmax normaliser from that many uniformly drawn items (:func:`sampled_multinomial_nll`):
a cheaper output layer for huge catalogues, at a quality cost measured in
``docs/scaling.md`` and ``benchmarks/results/sampled_softmax_ml1m.md``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..exceptions import DataError


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over users of −Σᵢ xᵢ log softmax(logits)ᵢ (the Mult-VAE/DAE likelihood)."""
    return -(torch.log_softmax(logits.float(), dim=1) * x).sum(dim=1).mean()


def check_sampled_softmax(value, n_items: int) -> int | None:
    """Number of negatives to draw per batch for ``sampled_softmax`` (None: the full softmax)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"sampled_softmax must be None, a share in (0, 1) or a count >= 1; got {value!r}")
    if isinstance(value, (float, np.floating)) and 0 < value < 1:
        return max(1, int(np.ceil(value * n_items)))
    if float(value) >= 1 and float(value) == int(value):
        return min(int(value), n_items)
    raise DataError(f"sampled_softmax must be None, a share in (0, 1) or a count >= 1; got {value!r}")


def sampled_multinomial_nll(hidden: torch.Tensor, layer: nn.Linear, x: torch.Tensor, n_negatives: int,
                            generator) -> torch.Tensor:
    """Multinomial NLL with a sampled estimate of the softmax normaliser (opt-in approximation).

    The exact loss is −Σᵢ xᵢ ℓᵢ + (Σᵢ xᵢ)·log Σⱼ exp ℓⱼ over all I items, ℓ = ``layer(hidden)``.
    Here each user's own items enter the normaliser exactly (their logits are computed per
    nonzero, nnz × h work) and the other items are estimated from ``n_negatives`` draws shared by
    the batch: the distinct sampled items S that are not the user's, each weighted by
    (I − |xᵤ|) / |S \\ xᵤ| (an unbiased estimate of the user's negative mass given a uniform
    sample). Cost: B·|S|·h multiply-adds instead of B·I·h (Jean et al., "On Using Very Large Target
    Vocabulary for Neural Machine Translation", ACL 2015, for the sampled normaliser).

    Parameters
    ----------
    hidden : Tensor of shape (B, h)
        Input of the output layer.
    layer : nn.Linear (h → I)
    x : Tensor of shape (B, I)
        The batch's rows.
    n_negatives : int
        Draws (with replacement) from the I items; duplicates are merged.
    generator : torch.Generator or recae.distributed.BatchSlice
    """
    gen = generator.generator if isinstance(generator, distributed.BatchSlice) else generator
    n_users, n_items = x.shape
    r, c = x.nonzero(as_tuple=True)
    v = x[r, c].float()
    w, b = layer.weight, layer.bias
    pos = ((hidden[r] * w[c]).sum(dim=1) + b[c]).float()  # the users' own items' logits
    neg = torch.randint(n_items, (n_negatives,), generator=gen, device=gen.device).to(x.device).unique()
    neg_logits = nn.functional.linear(hidden, w[neg], b[neg]).float()
    own = x[:, neg] != 0  # a sampled item that is the user's own counts on the exact side
    n_own = (x != 0).sum(dim=1)
    n_left = (len(neg) - own.sum(dim=1)).clamp_min(1)
    log_scale = torch.log((n_items - n_own).clamp_min(1).float() / n_left.float())
    neg_logits = neg_logits.masked_fill(own, -torch.inf) + log_scale[:, None]
    shift = torch.full((n_users,), -torch.inf, device=x.device).scatter_reduce(0, r, pos, "amax")
    shift = torch.maximum(shift, neg_logits.max(dim=1).values).detach()
    mass = torch.zeros(n_users, device=x.device).index_add(0, r, torch.exp(pos - shift[r]))
    mass = mass + torch.exp(neg_logits - shift[:, None]).sum(dim=1)
    log_z = shift + torch.log(mass)
    fit = torch.zeros(n_users, device=x.device).index_add(0, r, v * pos)
    return (x.float().sum(dim=1) * log_z - fit).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(N(μ, σ²) ‖ N(0, I))."""
    return 0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0).sum(dim=1).mean()


def log_normal(x, mu, logvar):
    return -0.5 * (logvar + math.log(2 * math.pi) + (x - mu).pow(2) / logvar.exp())
