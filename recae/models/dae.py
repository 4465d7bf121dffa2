"""Mult-DAE: a denoising autoencoder with a multinomial likelihood.

Liang, Krishnan, Hoffman, Jebara, "Variational Autoencoders for Collaborative Filtering",
WWW 2018 (the Mult-DAE variant). Input rows are L2-normalised, corrupted by dropout, encoded
to a small tanh layer and decoded to logits over all items; the loss is the multinomial
negative log-likelihood of the user's items (softmax over the whole catalogue).
"""

from __future__ import annotations

from torch import nn

from .layers import dropout, init_weights, l2_normalize, mlp
from .losses import multinomial_nll
from .neural import NeuralRecommender
from .params import store_params


class MultDAE(NeuralRecommender):
    """Denoising autoencoder I → hidden → I with a multinomial log-likelihood.

    Parameters
    ----------
    hidden_dims : tuple of int, default (200,)
        Encoder layer sizes; the decoder mirrors them.
    dropout : float, default 0.5
        Input dropout rate (the denoising corruption).
    activation : str, default "tanh"
    epochs, batch_size, lr, optimizer, weight_decay, l1
        Training settings (Adam with L2 weight decay by default).
    patience : int or None, default 20
        Early stopping: epochs without a better validation metric (needs ``fit(valid=...)``).
    valid_metric : str, default "ndcg@100"
    amp : {"auto", True, False}
        bfloat16 autocast on CUDA.
    device, random_state
    show_progress : bool or None, default None
        A progress bar over epochs; None shows one when stderr is a terminal (tqdm's rule).
    sampled_softmax : None, float in (0, 1) or int, default None
        A share or count of the catalogue drawn per batch to estimate the softmax
        normaliser (:mod:`recae.models.losses`); None: the full softmax.
    """

    def __init__(self, hidden_dims=(200,), dropout=0.5, activation="tanh", epochs=200, batch_size=256, lr=1e-3,
                 optimizer="adam", weight_decay=1e-5, l1=0.0, patience=20, valid_metric="ndcg@100", amp="auto",
                 device="auto", random_state=0, show_progress=None, sampled_softmax=None):
        store_params(self, locals())

    def _build(self, n_items):
        dims = [n_items, *self.hidden_dims]
        module = nn.ModuleDict({"encoder": mlp(dims, self.activation, last_act=True, sparse_input=True),
                                "decoder": mlp(dims[::-1], self.activation)})
        init_weights(module)
        return module

    def _logits(self, x, generator=None):
        h = dropout(l2_normalize(x), self.dropout, generator)
        return self.module_["decoder"](self.module_["encoder"](h))

    def _loss(self, ctx, x, rows):
        if self.sampled_softmax is None:
            return multinomial_nll(self._logits(x, ctx.noise), x)
        h = self.module_["encoder"](dropout(l2_normalize(x), self.dropout, ctx.noise))
        return self._output_nll(self.module_["decoder"][:-1](h), self.module_["decoder"][-1], x, ctx.noise)

    def _decoder_input(self, x):
        h = self.module_["decoder"][:-1](self.module_["encoder"](l2_normalize(x)))
        return h, self.module_["decoder"][-1]
