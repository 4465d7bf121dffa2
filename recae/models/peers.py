"""The two published large-catalogue linear autoencoders, behind the recae model contract.

- :class:`SANSA` wraps the ``sansa`` package (Spišák et al., "Scalable Approximate NonSymmetric
  Autoencoder for Collaborative Filtering", RecSys 2023): an LDLᵀ factorization of XᵀX + λI
  (CHOLMOD, then sparsified, or an incomplete factorization), a sparse approximate inverse of
  the unit-triangular factor, and EASE's weights kept as two sparse factors W₁, W₂.
- :class:`ELSA` wraps the ``elsarec`` package (Vančura et al., "Scalable Linear Shallow
  Autoencoder for Collaborative Filtering", RecSys 2022): unit-norm item factors A, scores
  x·A·Aᵀ − x, trained by its own minibatch loop on dense batch × items blocks.

They are here so that recae's :class:`~recae.models.sparse_ease.SparseEASE` and
:class:`~recae.models.factor_ease.FactorEASE` are measured against them on the same splits
and metric code. Each package is imported only when its model is fitted or loaded; without it
the model raises :class:`~recae.exceptions.RecaeError` with the install command.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch

from ..data.batching import densify_rows, rows_times
from ..data.validate import check_choice
from ..exceptions import DataError, RecaeError
from .base import Recommender
from .closed_form import is_real
from .params import store_params
from .settings import check_settings
from .trained import positive_int
from .validation import validation_score

__all__ = ["SANSA", "ELSA", "SANSA_INSTALL", "ELSA_INSTALL"]

SANSA_INSTALL = ("apt-get install libsuitesparse-dev && pip install scikit-sparse==0.4.16 && pip install sansa==1.1.0")
ELSA_INSTALL = "pip install elsarec==0.1.4"


def _sansa():
    try:
        import sansa
    except ImportError:
        raise RecaeError(f"SANSA needs the 'sansa' package (and scikit-sparse for CHOLMOD): {SANSA_INSTALL}") from None
    return sansa


def _elsa():
    try:
        from elsa import ELSA as Reference
    except ImportError:
        raise RecaeError(f"ELSA needs the 'elsarec' package: {ELSA_INSTALL}") from None
    return Reference


def missing_peer(cls_name: str) -> str | None:
    """Why the peer ``cls_name`` ("SANSA" or "ELSA") cannot run here, with the install command; None if it can."""
    try:
        {"SANSA": _sansa, "ELSA": _elsa}[cls_name]()
    except RecaeError as exc:
        return str(exc)
    return None


def _csr_state(prefix: str, W: sp.csr_matrix) -> dict:
    return {f"{prefix}.indptr": torch.as_tensor(W.indptr.astype(np.int64)),
            f"{prefix}.indices": torch.as_tensor(W.indices.astype(np.int64)),
            f"{prefix}.data": torch.as_tensor(W.data.astype(np.float32))}


def _csr_from_state(prefix: str, tensors: dict, n: int) -> sp.csr_matrix:
    indptr, indices, data = (tensors[f"{prefix}.{k}"].cpu().numpy() for k in ("indptr", "indices", "data"))
    if indptr.shape != (n + 1,) or indptr[0] != 0 or indptr[-1] != len(indices) or len(data) != len(indices) \
            or np.any(np.diff(indptr) < 0) or (len(indices) and not 0 <= indices.min() <= indices.max() < n):
        raise ValueError(f"{prefix} (indptr {indptr.shape}, {len(indices)} indices, {len(data)} values) "
                         f"is no CSR matrix of shape ({n}, {n})")
    return sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(n, n))


class SANSA(Recommender):
    """The ``sansa`` package's sparse approximate EASE: scores x·B with B ≈ I + W₁·W₂ (two sparse factors).

    Parameters
    ----------
    l2 : float, default 500.0
        λ added to the Gram matrix, as in EASE.
    density : float in (0, 1], default 0.05
        ``weight_matrix_density``: the share of n_items² entries each factor keeps.
    factorizer : {"cholmod", "icf"}, default "cholmod"
        LDLᵀ by CHOLMOD and then sparsified (needs scikit-sparse), or sansa's incomplete factorization.
    scans, finetune_steps : int, default 1 and 10
        The approximate inverse's settings (sansa's UMR inverter).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
        Where scores are densified; the products run in scipy on the CPU.

    Attributes
    ----------
    weights_ : tuple of two scipy.sparse.csr_matrix of shape (n_items, n_items)
        sansa's (W₁, W₂): x·W₁·W₂ approximates x·B − x, EASE's scores minus the history.

    Notes
    -----
    sansa itself ranks x·W₁·W₂ with the history masked; recae adds x back so scores are x·B with
    B's diagonal approximately zero, like EASE's, and the same ranking of unseen items.
    """

    additive_scores = True  # x·W₁·W₂ + x is linear in the history

    def __init__(self, l2=500.0, density=0.05, factorizer="cholmod", scans=1, finetune_steps=10, device="auto"):
        store_params(self, locals())

    def _fit(self, X, valid=None):
        if not is_real(self.l2) or not self.l2 > 0:
            raise DataError(f"l2 must be a positive number; got {self.l2!r}")
        if not is_real(self.density) or not 0 < self.density <= 1:
            raise DataError(f"density must be a number in (0, 1]; got {self.density!r}")
        check_choice(self.factorizer, "factorizer", ("cholmod", "icf"))
        sansa = _sansa()
        factorizer = (sansa.CHOLMODGramianFactorizerConfig() if self.factorizer == "cholmod"
                      else sansa.ICFGramianFactorizerConfig())
        config = sansa.SANSAConfig(l2=float(self.l2), weight_matrix_density=float(self.density),
                                   gramian_factorizer_config=factorizer,
                                   lower_triangle_inverter_config=sansa.UMRUnitLowerTriangleInverterConfig(
                                       scans=int(self.scans), finetune_steps=int(self.finetune_steps)))
        if X.nnz == 0 or np.diff(X.indptr).max() < 2:  # no two items ever co-occur: B = 0 (sansa fails on it)
            empty = sp.csr_matrix((X.shape[1], X.shape[1]), dtype=np.float32)
            self.weights_ = (empty, empty.copy())
            return
        level = logging.getLogger("sansa").level
        logging.getLogger("sansa").setLevel(logging.WARNING)  # sansa logs every step at INFO
        try:
            W1, W2 = sansa.SANSA(config).fit(sp.csr_matrix(X, dtype=np.float32)).weights
        finally:
            logging.getLogger("sansa").setLevel(level)
        self.weights_ = (sp.csr_matrix(W1, dtype=np.float32), sp.csr_matrix(W2, dtype=np.float32))

    def score_rows(self, X):
        X = sp.csr_matrix(X, dtype=np.float32)
        W1, W2 = self.weights_
        return densify_rows(sp.csr_matrix((X @ W1) @ W2 + X), self.device_)

    def similarity_rows(self, cols):
        """Row i of B for each queried item i: the scores of a one-item history."""
        cols = np.asarray(cols, dtype=np.int64)
        one = sp.csr_matrix((np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
                            shape=(len(cols), self.n_items_))
        return self.score_rows(one)

    def get_state(self):
        return {**_csr_state("w1", self.weights_[0]), **_csr_state("w2", self.weights_[1])}

    def set_state(self, tensors):
        self.weights_ = (_csr_from_state("w1", tensors, self.n_items_), _csr_from_state("w2", tensors, self.n_items_))


class ELSA(Recommender):
    """The ``elsarec`` package's ELSA: scores x·A·Aᵀ − x with unit-norm item factors A (items × rank).

    Parameters
    ----------
    rank : int, default 256
        ``n_dims`` of the reference, at most the number of items.
    epochs : int, default 20
        Most epochs; with ``fit(valid=...)`` the epoch with the best validation ``ndcg@100`` is kept.
    batch_size : int, default 512
    lr : float, default 0.1
        The reference's NAdam learning rate (its default).
    patience : int or None, default 5
        Stop after this many epochs without a better validation score (needs ``fit(valid=...)``).
    random_state : int, default 0
        Seeds the reference's initialisation and shuffling (the global torch RNG is restored after).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"

    Attributes
    ----------
    item_factors_ : torch.Tensor of shape (n_items, rank)
        A, the reference's weights with rows scaled to unit norm (as its forward pass does).
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` (the reference's NMSE) and, with validation, ``ndcg@100``.
    """

    additive_scores = True

    def __init__(self, rank=256, epochs=20, batch_size=512, lr=0.1, patience=5, random_state=0, device="auto"):
        store_params(self, locals())

    def _check_settings(self) -> None:
        check_settings(self)  # random_state, device: the rules every model shares
        for name in ("rank", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"{name} must be a positive integer; got {value!r}")
        if self.patience is not None and not positive_int(self.patience):
            raise DataError(f"patience must be a positive integer or None; got {self.patience!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float, np.integer, np.floating)) \
                or not 0 < self.lr < np.inf:  # the reference hands a bad one to torch, which raises a bare ValueError
            raise DataError(f"lr must be a finite number > 0; got {self.lr!r}")

    def _fit(self, X, valid=None):
        self._check_settings()
        if self.rank > X.shape[1]:
            raise DataError(f"rank must be an integer in [1, {X.shape[1]}] (the number of items); got {self.rank!r}")
        Reference = _elsa()
        X = sp.csr_matrix(X, dtype=np.float32)
        self.history_, best, bad = [], -np.inf, 0
        with torch.random.fork_rng(devices=[self.device_] if self.device_.type == "cuda" else []):
            torch.manual_seed(int(self.random_state or 0))
            ref = Reference(X.shape[1], int(self.rank), device=self.device_, lr=float(self.lr))
            for epoch in range(1, int(self.epochs) + 1):
                losses = ref.fit(X, epochs=1, batch_size=int(self.batch_size), shuffle=True, verbose=False)
                self.item_factors_ = torch.nn.functional.normalize(ref.get_items_embeddings().float(), dim=1)
                logs = {"epoch": epoch, "loss": float(losses["nmse_train"][-1])}
                if valid is not None:
                    logs["ndcg@100"] = score = validation_score(self, valid, "ndcg@100")
                    if score > best:
                        best, bad, kept = score, 0, self.item_factors_.clone()
                    else:
                        bad += 1
                self.history_.append(logs)
                if valid is not None and self.patience is not None and bad >= self.patience:
                    break
        if valid is not None:
            self.item_factors_ = kept
        self.best_epoch_ = int(np.argmax([h["ndcg@100"] for h in self.history_])) + 1 if valid is not None \
            else len(self.history_)

    def score_rows(self, X):
        A = self.item_factors_
        return rows_times(X, A) @ A.T - densify_rows(X, self.device_)

    def similarity_rows(self, cols):
        A = self.item_factors_
        return A[torch.as_tensor(np.asarray(cols, dtype=np.int64), device=A.device)] @ A.T

    def get_state(self):
        return {"item_factors": self.item_factors_.cpu()}

    def set_state(self, tensors):
        self.item_factors_ = tensors["item_factors"].float().to(self.device_)
