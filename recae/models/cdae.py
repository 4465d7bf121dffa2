"""CDAE: a denoising autoencoder with a per-user input node.

Wu, DuBois, Zheng, Ester, "Collaborative Denoising Auto-Encoders for Top-N Recommender
Systems", WSDM 2016. The hidden layer is act(W·x̃ + V_u + b): the corrupted history plus a
learned vector per training user.

New users have no learned vector. ``recommend_new`` and ``score`` encode them with the mean
of the training users' vectors (the prior the L2 penalty pulls every vector towards), so a
new user is the history term plus the average user offset; ``recommend`` for a training user
uses that user's own vector.
"""

from __future__ import annotations

import torch
from torch import nn

from ..exceptions import DataError
from ..data.batching import densify_rows
from ..data.sparse import take_rows
from .layers import SparseInputLinear, activation, dropout, init_weights, l2_normalize
from .losses import multinomial_nll
from .neural import NeuralRecommender
from .params import store_params
from .ranking import FactoredScores

LOSSES = ("multinomial", "bce", "mse")


class CDAE(NeuralRecommender):
    """Collaborative denoising autoencoder I → hidden (+ user node) → I.

    Parameters
    ----------
    hidden_dim : int, default 200
    dropout : float, default 0.5
    activation : str, default "tanh"
    loss : {"multinomial", "bce", "mse"}, default "multinomial"
        Multinomial log-likelihood over all items (with L2-normalised input), binary
        cross-entropy on sigmoid outputs, or squared error.
    user_l2 : float, default 1e-4
        L2 penalty on the user vectors (mean over the batch).
    epochs, batch_size, lr, optimizer, weight_decay, l1, patience, valid_metric, amp, device,
    random_state, show_progress
        As in :class:`~recae.models.dae.MultDAE`.
    sampled_softmax : None, float in (0, 1) or int, default None
        Only with ``loss="multinomial"``. A share or count of the catalogue drawn per batch to estimate the softmax
        normaliser (:mod:`recae.models.losses`); None: the full softmax.

    Under torchrun every rank holds all user vectors (an ``nn.Embedding`` of n_users × hidden)
    and DDP all-reduces its whole (mostly zero) gradient each step: exact, but that all-reduce
    grows with the number of users, so at 10⁸ users it dominates a step (see docs/scaling.md).
    """

    def __init__(self, hidden_dim=200, dropout=0.5, activation="tanh", loss="multinomial", user_l2=1e-4, epochs=100,
                 batch_size=256, lr=1e-3, optimizer="adam", weight_decay=1e-5, l1=0.0, patience=20,
                 valid_metric="ndcg@100", amp="auto", device="auto", random_state=0, show_progress=None,
                 sampled_softmax=None):
        store_params(self, locals())

    no_local_rows = "its user vectors are indexed by global training row"

    def _prepare(self, X):
        if self.loss not in LOSSES:
            raise DataError(f"loss must be one of {LOSSES}; got {self.loss!r}")
        if self.sampled_softmax is not None and self.loss != "multinomial":
            raise DataError(f"sampled_softmax approximates the multinomial loss; got loss={self.loss!r} "
                            "(use loss='multinomial' or sampled_softmax=None)")
        self.n_users_ = X.shape[0]

    def _prepare_from_state(self, tensors):
        self.n_users_ = tensors["user_nodes.weight"].shape[0]

    def _build(self, n_items):
        module = nn.ModuleDict({"encoder": SparseInputLinear(n_items, self.hidden_dim),
                                "user_nodes": nn.Embedding(self.n_users_, self.hidden_dim),
                                "decoder": nn.Linear(self.hidden_dim, n_items)})
        init_weights(module)
        nn.init.normal_(module["user_nodes"].weight, std=0.01)
        module.act = activation(self.activation)
        return module

    def _hidden(self, x, user_vec, generator=None):
        x = l2_normalize(x) if self.loss == "multinomial" else x
        return self.module_.act(self.module_["encoder"](dropout(x, self.dropout, generator)) + user_vec)

    def _logits(self, x, user_vec, generator=None):
        return self.module_["decoder"](self._hidden(x, user_vec, generator))

    def _loss(self, ctx, x, rows):
        user_vec = self.module_["user_nodes"](rows.to(x.device))
        if self.sampled_softmax is not None:
            h = self._hidden(x, user_vec, ctx.noise)
            data = self._output_nll(h, self.module_["decoder"], x, ctx.noise)
            return data + self.user_l2 * user_vec.pow(2).sum(dim=1).mean()
        logits = self._logits(x, user_vec, ctx.noise)
        if self.loss == "multinomial":
            data = multinomial_nll(logits, x)
        elif self.loss == "bce":
            data = nn.functional.binary_cross_entropy_with_logits(logits.float(), (x > 0).float(), reduction="sum") / len(x)
        else:
            data = (torch.sigmoid(logits.float()) - x).pow(2).sum() / len(x)
        return data + self.user_l2 * user_vec.pow(2).sum(dim=1).mean()

    def _decoder_input(self, x):
        return self._hidden(x, self.module_["user_nodes"].weight.mean(dim=0)), self.module_["decoder"]

    def _user_hidden(self, rows):
        self.module_.eval()
        x = densify_rows(take_rows(self.user_items_, rows), self.device_)
        return self._hidden(x, self.module_["user_nodes"](torch.as_tensor(rows, device=self.device_)))

    @torch.no_grad()
    def score_users(self, rows):
        return self.module_["decoder"](self._user_hidden(rows)).float()

    @torch.no_grad()
    def factored_users(self, rows):  # a huge catalogue ranked in item chunks
        return FactoredScores(self._user_hidden(rows), self.module_["decoder"])
