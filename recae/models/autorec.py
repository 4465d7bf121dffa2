"""AutoRec: an autoencoder that reconstructs each item's (or user's) vector of ratings.

Sedhain, Menon, Sanner, Xie, "AutoRec: Autoencoders Meet Collaborative Filtering", WWW 2015.
I-AutoRec (``orient="item"``) encodes item ``i``'s partially observed vector of ratings by
all users, ``h_i = g(W r_i + μ)``, decodes ``r̂_i = f(V h_i + b)``, and the predicted rating
of user ``u`` for item ``i`` is ``r̂_i[u]``. U-AutoRec (``orient="user"``) does the same with
users' vectors over items. The objective is the paper's:

    Σ_vectors ‖(r − r̂) ⊙ observed‖² + (λ/2)(‖W‖² + ‖V‖²)

(unobserved ratings add nothing to the loss or to any gradient), minimised by Adam over
mini-batches of vectors (the paper used L-BFGS/Rprop) and scaled by 1/number of observed
ratings, so the reported loss is a per-rating mean squared error; ``l2`` is the paper's λ.
``optimizer="lbfgs"`` minimises the same objective over the whole matrix with L-BFGS.
Training early-stops on validation RMSE when ``fit(valid=...)`` is given.

New users (``recommend_new``/``score``): U-AutoRec encodes the new user's rating vector
directly (the same computation as for a training user). I-AutoRec has one output unit per
training user, so a new user gets one fitted for them: the ridge regression of their ratings
on the fixed item codes ``h_i`` (plus a bias), with the training objective's penalty λ/2,
shrunk towards the mean training user's output weights. That is the new user's part of the
training objective with every item-side weight held fixed; it needs no retraining.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.batching import densify_rows, row_chunks
from ..exceptions import DataError
from .explicit import ExplicitRecommender
from .layers import SparseInputLinear, activation
from .params import store_params
from .ratings import masked_sse, ridge_fold_in

ORIENTS = ("item", "user")


class AutoRec(ExplicitRecommender):
    """I-AutoRec / U-AutoRec for explicit ratings (see the module docstring).

    Parameters
    ----------
    orient : {"item", "user"}, default "item"
        Reconstruct item vectors (I-AutoRec, the paper's better variant) or user vectors.
    hidden : int, default 500
    activation : str, default "sigmoid"
        Hidden activation ``g``.
    output : str, default "identity"
        Output activation ``f``.
    l2 : float, default 200.0
        λ of the objective above.
    epochs : int, default 20
        Without validation data this is the training length; with ``fit(valid=...)`` the cap
        for early stopping (raise it there: the best epoch depends on the data size).
    batch_size : int, default 256
        Vectors (items for I-AutoRec) per update.
    lr : float, default 1e-3
        Step size; with ``optimizer="lbfgs"`` the line search's first trial step (use 1.0).
    optimizer : {"adam", "adamw", "sgd", "rmsprop", "lbfgs"}, default "adam"
        ``"lbfgs"`` minimises the full-batch objective (the paper's optimizer); an epoch is
        then at most ``recae.models.explicit.LBFGS_ITERATIONS`` (10) L-BFGS iterations and
        12 objective evaluations (fewer iterations when the line search needs more
        evaluations, e.g. with a small ``lr``), and ``batch_size`` only bounds the dense
        block held at once.
    patience : int or None, default 8
        Early stopping on ``valid_metric`` (needs ``fit(valid=...)``).
    valid_metric : {"rmse", "mae"}, default "rmse"
    rating_range : (low, high) or None, default None
        The rating scale. Declared: training ratings outside it are an error and
        predictions are clipped to it. None: the observed range of the training ratings.
    amp : {"auto", True, False}, default False
        bfloat16 autocast on CUDA (off by default: rating errors need float32 precision).
    device, random_state, show_progress

    Defaults are tuned for I-AutoRec on ML-1M (random 90/10 split, validation on 10% of the
    training ratings, seed 0): λ ∈ {30, 100, 200, 300, 400, 1000, 3000}, lr ∈ {3e-4, 1e-3, 3e-3},
    batch ∈ {64, 256, 512}; ``epochs`` is the best epoch there, so ``AutoRec().fit(train)``
    trains that long (``benchmarks/autorec_ratings.py``; figures in
    ``benchmarks/results/autorec_ratings_ml1m.md``).

    Attributes
    ----------
    module_ : torch.nn.ModuleDict with ``encoder`` (W, μ) and ``decoder`` (V, b)
    codes_ : Tensor of shape (n_vectors, hidden)
        Hidden codes of the training vectors (items for I-AutoRec, users for U-AutoRec).
    rating_range_ : (float, float)
    global_mean_, user_mean_, item_mean_, user_count_, item_count_
        Training-rating statistics used for fallbacks.
    history_, best_epoch_
    """

    tuple_params = ("rating_range",)  # a (low, high) pair, a list in the file's JSON

    def __init__(self, orient="item", hidden=500, activation="sigmoid", output="identity", l2=200.0, epochs=20,
                 batch_size=256, lr=1e-3, optimizer="adam", patience=8, valid_metric="rmse", rating_range=None,
                 amp=False, device="auto", random_state=0, show_progress=None):
        store_params(self, locals())

    def _check_settings(self):
        if self.orient not in ORIENTS:
            raise DataError(f"orient must be one of {ORIENTS}; got {self.orient!r}")
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, (int, np.integer)) or self.hidden < 1:
            raise DataError(f"hidden must be a positive integer; got {self.hidden!r}")
        activation(self.activation)
        activation(self.output)
        super()._check_settings()

    # ------------------------------------------------------------------ model
    def _training_rows(self, X):
        return X.T.tocsr() if self.orient == "item" else X

    def _build(self, n_items):
        n_in = self.n_users_ if self.orient == "item" else n_items
        module = nn.ModuleDict({"encoder": SparseInputLinear(n_in, int(self.hidden)),
                                "decoder": nn.Linear(int(self.hidden), n_in)})
        nn.init.xavier_uniform_(module["decoder"].weight)
        nn.init.zeros_(module["encoder"].bias)
        # start the reconstruction at the mean rating instead of at zero
        nn.init.constant_(module["decoder"].bias, float(getattr(self, "global_mean_", 0.0)))
        module.act = activation(self.activation)
        module.out = activation(self.output)
        return module

    def _encode(self, x):
        return self.module_.act(self.module_["encoder"](x))

    def _forward(self, x):
        return self.module_.out(self.module_["decoder"](self._encode(x)))

    def _loss(self, ctx, batch, rows):
        values, mask = batch
        sse = masked_sse(self._forward(values), values, mask)
        # the batch's share of the whole objective, per observed rating
        return sse * (ctx.loader.n_rows / len(rows)) / max(ctx.loader.nnz, 1)

    def _optimizers(self, module):
        if self.optimizer == "lbfgs":  # one parameter group; the L2 term is in _penalty
            return [self._make_optimizer(list(module.parameters()))]
        # (λ/2)‖W‖² over the objective's 1/n_observed scale has the gradient (λ/n_observed)·W:
        # coupled weight decay on the two weight matrices (not the biases) is that gradient
        weights = [module["encoder"].weight, module["decoder"].weight]
        biases = [module["encoder"].bias, module["decoder"].bias]
        opt = self._make_optimizer([{"params": weights, "weight_decay": float(self.l2) / max(self.n_observed_, 1)},
                                    {"params": biases, "weight_decay": 0.0}])
        return [opt]

    def _penalty(self, module):
        if self.optimizer != "lbfgs":
            return 0.0  # applied as weight decay, see _optimizers
        # L-BFGS needs the objective's value, not only its gradient
        squares = module["encoder"].weight.pow(2).sum() + module["decoder"].weight.pow(2).sum()
        return 0.5 * float(self.l2) / max(self.n_observed_, 1) * squares

    # ------------------------------------------------------------------ caches
    @torch.no_grad()
    def _refresh(self):
        self.module_.eval()
        rows = self._training_rows(self.user_items_)
        codes = torch.empty((rows.shape[0], int(self.hidden)), device=self.device_)
        for a, b in row_chunks(rows.shape[0], rows.shape[1]):
            codes[a:b] = self._encode(densify_rows(rows[a:b], self.device_)).float()
        self.codes_ = codes

    # ------------------------------------------------------------------ prediction
    def _pair_scores(self, users, items):
        vec, out = (items, users) if self.orient == "item" else (users, items)
        dec = self.module_["decoder"]
        return self.module_.out((self.codes_[vec] * dec.weight[out]).sum(dim=1) + dec.bias[out])

    def _user_scores(self, rows):
        dec = self.module_["decoder"]
        if self.orient == "item":
            r = torch.as_tensor(rows, device=self.device_)
            return self.module_.out(self.codes_ @ dec.weight[r].T + dec.bias[r]).T
        return self.module_.out(dec(self.codes_[torch.as_tensor(rows, device=self.device_)]))

    def _fold_in_scores(self, X):
        if self.orient == "user":
            return self._forward(densify_rows(X, self.device_))
        dec = self.module_["decoder"]
        features = torch.cat([self.codes_, torch.ones(len(self.codes_), 1, device=self.device_)], dim=1)
        prior = torch.cat([dec.weight.mean(dim=0), dec.bias.mean().reshape(1)])
        alpha = max(float(self.l2) / 2, 1e-3)
        pre = ridge_fold_in(X, features, torch.zeros(self.n_items_, device=self.device_), prior, alpha)
        return self.module_.out(pre)

    def _item_vectors(self):
        return self.codes_ if self.orient == "item" else self.module_["decoder"].weight
