"""Matrix factorization with a ranking loss: ``implicit``'s BPR behind the recae model contract.

Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from
Implicit Feedback", UAI 2009, as implemented by benfred/implicit (the ``bench`` extra).

implicit cannot fold a new user into BPR (its ``recalculate_user`` raises). recae folds in
by optimising only the new users' factors with the same BPR objective against the fixed
item factors and biases: ``fold_in_steps`` Adam steps, each on 256 sampled (own item, random
item) pairs per user, with the training L2 penalty. Training users keep their BPR factors.
(A least-squares fold-in, as ALS does, scored far worse: BPR's factors are not fitted to
squared errors.)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import RecaeError
from .als import ImplicitFactors, implicit_errors, single_blas_thread
from .params import store_params
from .settings import check_settings


def _implicit_bpr():
    try:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
    except ImportError:
        raise RecaeError("ImplicitBPR needs the 'implicit' package: pip install 'recae[bench]'") from None
    return BayesianPersonalizedRanking


class ImplicitBPR(ImplicitFactors):
    """Bayesian personalized ranking matrix factorization from the ``implicit`` package.

    Parameters
    ----------
    factors : int, default 128
    learning_rate : float, default 0.05
    regularization : float, default 0.01
    iterations : int, default 100
    fold_in_steps : int, default 100
        Adam steps of the BPR fold-in for new users (see the module docstring).
    fold_in_lr : float, default 0.05
    num_threads : int, default 0
        implicit's training threads (0: all cores). Its SGD updates run lock-free across
        threads, so only ``num_threads=1`` gives the same factors on every fit.
    random_state : int, default 0
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where scores are computed; training runs on implicit's CPU solver.

    Attributes
    ----------
    user_factors_ : torch.Tensor of shape (n_users, factors + 1)
        The last column is 1 (it multiplies the item bias).
    item_factors_ : torch.Tensor of shape (n_items, factors + 1)
        The last column is the item bias.
    """

    _FOLD_SAMPLES = 256
    similarity_columns = slice(None, -1)
    #: read when a new user is folded in, not when the factors are learned: a fitted model takes new ones
    after_fit = ImplicitFactors.after_fit + ("fold_in_steps", "fold_in_lr", "num_threads")

    def __init__(self, factors=128, learning_rate=0.05, regularization=0.01, iterations=100,
                 fold_in_steps=100, fold_in_lr=0.05, num_threads=0, random_state=0, device="auto"):
        store_params(self, locals())

    def _fit(self, X, valid=None):
        check_settings(self)
        with single_blas_thread(), implicit_errors(self):
            model = _implicit_bpr()(factors=int(self.factors), learning_rate=float(self.learning_rate),
                                    regularization=float(self.regularization), iterations=int(self.iterations),
                                    num_threads=int(self.num_threads), random_state=self.random_state)
            model.fit(X, show_progress=False)
        self.user_factors_ = torch.as_tensor(np.asarray(model.user_factors), device=self.device_)
        self.item_factors_ = torch.as_tensor(np.asarray(model.item_factors), device=self.device_)

    def _fold_in(self, X) -> torch.Tensor:
        V, b = self.item_factors_[:, :-1], self.item_factors_[:, -1]
        n, f = X.shape[0], V.shape[1]
        X = sp.csr_matrix(X > 0)  # the positives of each row, in index order
        start = torch.as_tensor(X.indptr[:-1], device=V.device, dtype=torch.int64)
        count = torch.as_tensor(np.diff(X.indptr), device=V.device, dtype=torch.int64)
        items = torch.as_tensor(np.append(X.indices, 0), device=V.device, dtype=torch.int64)  # 0: empty rows' pick
        has = count > 0  # users without history keep a zero vector (popularity by item bias)
        # one fixed stream of draws, shared by every row and mapped onto each row's own positives: a
        # history folds in to the same factors whatever else is in the call, and on every call
        fitted = self._fitted_settings()  # the training penalty and seed, whatever set_params did since
        gen = torch.Generator(device=V.device).manual_seed(int(fitted["random_state"] or 0))
        p = torch.zeros((n, f), device=V.device, dtype=V.dtype, requires_grad=True)
        opt = torch.optim.Adam([p], lr=float(self.fold_in_lr))
        with torch.enable_grad():
            for _ in range(int(self.fold_in_steps)):
                u = torch.rand(self._FOLD_SAMPLES, device=V.device, generator=gen)
                nth = torch.minimum((u[None, :] * count[:, None]).long(), (count - 1).clamp_min(0)[:, None])
                pos = items[torch.where(has[:, None], start[:, None] + nth, torch.full_like(nth, len(items) - 1))]
                neg = torch.randint(0, V.shape[0], (self._FOLD_SAMPLES,), device=V.device,
                                    generator=gen).expand(n, -1)
                # all scores then a gather: far cheaper than gathering (users, samples, factors) blocks
                s = p @ V.T + b
                margin = s.gather(1, pos) - s.gather(1, neg)
                loss = -torch.nn.functional.logsigmoid(margin).mean(1).sum() \
                    + float(fitted["regularization"]) * (p * p).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        out = torch.ones((n, f + 1), device=V.device, dtype=V.dtype)
        out[:, :-1] = p.detach() * has[:, None]
        return out
