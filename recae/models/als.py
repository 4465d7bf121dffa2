"""Matrix factorization baseline: ``implicit``'s ALS behind the recae model contract.

Hu, Koren, Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008,
as implemented by benfred/implicit (installed with the ``bench`` extra). New users are
folded in without retraining by solving their least-squares step against the fixed item
factors (implicit's ``recalculate_user``).

implicit runs its own OpenMP threads and is slowed badly by a multithreaded BLAS in the same
process (it warns about OpenBLAS). Fitting and folding in run under
``threadpoolctl.threadpool_limits(1, "blas")`` when threadpoolctl is installed.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..exceptions import MemoryBudgetError, RecaeError, TrainingError
from .base import Recommender
from .inputs import without_zeros
from .params import store_params
from .ranking import cosine_rows
from .settings import check_settings


def _implicit_als():
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        raise RecaeError("ImplicitALS needs the 'implicit' package: pip install 'recae[bench]'") from None
    return AlternatingLeastSquares


@contextlib.contextmanager
def implicit_errors(model):
    """implicit's own failures as recae errors that name the settings: its MemoryError (factors too
    many for this machine) and its ModelFitError (NaN factors: a learning rate or alpha too large)."""
    try:
        yield
    except MemoryError as exc:
        raise MemoryBudgetError(f"{type(model).__name__} with factors={model.factors} does not fit in this "
                                f"machine's memory ({exc}); lower factors") from None
    except Exception as exc:
        if type(exc).__name__ != "ModelFitError":
            raise
        steps = " or ".join(p for p in ("learning_rate", "alpha") if p in model.get_params())
        raise TrainingError(f"{type(model).__name__} diverged ({exc}) with {model!r}: lower {steps}, or raise "
                            "regularization") from None


def single_blas_thread():
    _implicit_als()  # load implicit's libraries first: a limit only reaches libraries already loaded
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class ImplicitFactors(Recommender):
    """What the ``implicit`` wrappers share: scores ``user_factors_ · item_factors_ᵀ``; new rows via ``_fold_in``."""

    _abstract = True
    #: The item-factor columns that item similarities compare (BPR leaves out its bias column).
    similarity_columns = slice(None)

    def score_rows(self, X):
        return self._fold_in(X) @ self.item_factors_.T

    def score_users(self, rows):
        return self.user_factors_[torch.as_tensor(rows, device=self.device_)] @ self.item_factors_.T

    def similarity_rows(self, cols):
        # cosine between item factors, as implicit's own similar_items does
        return cosine_rows(self.item_factors_[:, self.similarity_columns], cols)

    def get_state(self):
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def set_state(self, tensors):
        self.user_factors_, self.item_factors_ = tensors["user_factors"], tensors["item_factors"]


class ImplicitALS(ImplicitFactors):
    """Implicit-feedback ALS (weighted matrix factorization) from the ``implicit`` package.

    Parameters
    ----------
    factors : int, default 256
    regularization : float, default 50.0
    alpha : float > 0, default 5.0
        Confidence of an observed entry: c = alpha·x, against 1 for every unobserved one
        (implicit's weighting; alpha = 1 weighs a single interaction like a missing entry).
    iterations : int, default 15
    random_state : int, default 0
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where scores are computed; the factorization itself runs on implicit's CPU solver.
    (Defaults: the setting tuned on ML-1M validation in the reference runs.)

    Attributes
    ----------
    user_factors_ : torch.Tensor of shape (n_users, factors)
    item_factors_ : torch.Tensor of shape (n_items, factors)
    """

    def __init__(self, factors=256, regularization=50.0, alpha=5.0, iterations=15, random_state=0, device="auto"):
        store_params(self, locals())

    def _solver(self, params: dict):
        return _implicit_als()(factors=int(params["factors"]), regularization=float(params["regularization"]),
                               alpha=float(params["alpha"]), iterations=int(params["iterations"]),
                               random_state=params["random_state"])

    def _fit(self, X, valid=None):
        check_settings(self)
        with single_blas_thread(), implicit_errors(self):  # implicit checks the BLAS pool when the solver is built
            model = self._solver(self.get_params())
            model.fit(X, show_progress=False)
        self.user_factors_ = torch.as_tensor(np.asarray(model.user_factors), device=self.device_)
        self.item_factors_ = torch.as_tensor(np.asarray(model.item_factors), device=self.device_)

    def _fold_in(self, X) -> torch.Tensor:
        X = without_zeros(X)  # implicit reads a stored 0 as confidence 0, below an unobserved item's 1
        with single_blas_thread():
            model = self._solver(self._fitted_settings())  # a set_params since: not what the factors were fit with
            model.item_factors = self.item_factors_.cpu().numpy()
            model.user_factors = np.zeros((1, model.item_factors.shape[1]), dtype=np.float32)
            factors = model.recalculate_user(np.arange(X.shape[0]), X.astype(np.float32))
        return torch.as_tensor(np.asarray(factors).reshape(X.shape[0], -1), device=self.device_)
