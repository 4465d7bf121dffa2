"""Shared machinery of the neural autoencoders: modules, optimizers, batches, scoring.

A subclass provides ``_build(n_items) -> nn.Module``, ``_loss(ctx, x) -> Tensor`` (the
training loss of one dense batch) and ``_forward_scores(x) -> Tensor`` (ranking scores),
and may override ``_train_epoch`` when its update is special (RecVAE alternates).
All randomness (shuffling, dropout, sampling) comes from one seeded ``torch.Generator``, so a
fixed ``random_state`` gives identical results on the same device and the global RNG is
never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import torch
from torch import nn

from .. import train as training
from ..data.batching import DeviceCSR, densify_rows
from ..exceptions import DataError
from .base import Recommender

logger = logging.getLogger(__name__)

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
              "rmsprop": torch.optim.RMSprop}


def activation(name: str) -> nn.Module:
    """``nn.Module`` for ``"tanh"``, ``"relu"``, ``"sigmoid"``, ``"selu"``, ``"swish"``/``"silu"``, ``"identity"``."""
    table = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "selu": nn.SELU, "swish": nn.SiLU,
             "silu": nn.SiLU, "identity": nn.Identity}
    if name not in table:
        raise DataError(f"activation must be one of {sorted(table)}; got {name!r}")
    return table[name]()


def dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout drawing from ``generator`` (``F.dropout`` would use the global RNG)."""
    if p <= 0 or generator is None:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep / (1.0 - p)


class SparseInputLinear(nn.Module):
    """``x @ W + b`` for mostly-zero input rows, computed over the nonzeros only.

    Interaction rows are ~97% zeros, so the first layer runs as a weighted ``embedding_bag``
    (gather the rows of W for each nonzero, scale, sum per row): the same result as a dense
    matmul at a fraction of the work, forward and backward. Dense inputs fall back to matmul.

    Parameters
    ----------
    in_features, out_features : int
    """

    #: Above this share of nonzeros a dense matmul is cheaper than the gather.
    max_density = 0.25

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.nonzero(as_tuple=True)
        if len(rows) > self.max_density * x.numel():
            return x @ self.weight.to(x.dtype) + self.bias
        counts = torch.bincount(rows, minlength=x.shape[0])
        offsets = torch.cumsum(counts, 0) - counts
        out = nn.functional.embedding_bag(cols, self.weight, offsets, mode="sum",
                                          per_sample_weights=x[rows, cols].float())
        return out + self.bias


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over users of −Σᵢ xᵢ log softmax(logits)ᵢ (the Mult-VAE/DAE likelihood)."""
    return -(torch.log_softmax(logits.float(), dim=1) * x).sum(dim=1).mean()


class NeuralRecommender(Recommender):
    """Base class of the neural autoencoders (see the module docstring)."""

    _abstract = True  # not a model itself: kept out of MODEL_REGISTRY

    #: Hyper-parameters every neural model takes (subclasses list them in ``__init__``).
    _fit_options = ("checkpoint_dir", "resume", "callbacks")

    def _check_common(self) -> None:
        from ..metrics import RANKING_METRICS

        name, _, k = str(self.valid_metric).partition("@")
        if name not in RANKING_METRICS or not (k == "" or k.isdigit() and int(k) > 0):
            raise DataError(f"valid_metric must look like 'ndcg@100' with a metric from {sorted(RANKING_METRICS)}; "
                            f"got {self.valid_metric!r}")
        if self.patience is not None and (isinstance(self.patience, bool) or not isinstance(self.patience, (int, np.integer))
                                          or self.patience < 1):
            raise DataError(f"patience must be a positive integer or None; got {self.patience!r}")
        if self.optimizer not in OPTIMIZERS:
            raise DataError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got {self.optimizer!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"{name} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise DataError(f"lr must be > 0; got {self.lr!r}")

    # ------------------------------------------------------------------ to implement
    def _build(self, n_items: int) -> nn.Module:
        raise NotImplementedError

    def _loss(self, ctx, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward_scores(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ training
    def _configure_optimizers(self, module: nn.Module) -> list[torch.optim.Optimizer]:
        return [self._make_optimizer(module.parameters())]

    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer](params, lr=self.lr, weight_decay=self.weight_decay)

    def _amp_enabled(self) -> bool:
        """bfloat16 autocast for training on GPUs that support it (never for ranking)."""
        return (self.device_.type == "cuda" and self.amp in (True, "auto")
                and torch.cuda.is_bf16_supported())

    def _penalty(self, module: nn.Module) -> torch.Tensor | float:
        if not self.l1:
            return 0.0
        return self.l1 * sum(p.abs().sum() for n, p in module.named_parameters() if p.ndim > 1)

    def _run_batches(self, ctx, optimizers, loss_fn=None) -> float:
        """One pass over shuffled batches updating ``optimizers``; returns the mean loss."""
        return training.run_batches(self, ctx, optimizers, loss_fn or self._loss)

    def _validation_score(self, valid, metric: str) -> float:
        return training.validation_score(self, valid, metric)

    def _train_epoch(self, ctx) -> float:
        return self._run_batches(ctx, ctx.optimizers)

    #: Hyper-parameters that do not change what is learned, so a resumed run may differ in them.
    _RESUMABLE = ("epochs", "patience", "show_progress", "device", "amp")

    def _fingerprint(self, X) -> str:
        params = {k: v for k, v in self.get_params().items() if k not in self._RESUMABLE}
        h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
        h.update(np.asarray(X.shape, dtype=np.int64).tobytes())
        h.update(X.indptr.astype(np.int64).tobytes())
        h.update(X.indices.astype(np.int64).tobytes())
        h.update(X.data.astype(np.float32).tobytes())
        return h.hexdigest()

    def _seeded_build(self, n_items: int) -> nn.Module:
        # Modules are built on the CPU and moved, so only the CPU generator draws the initial
        # weights; fork_rng restores it afterwards and no CUDA generator is touched.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self._seed())
            module = self._build(n_items)
        return module.to(self.device_)

    def _seed(self) -> int:
        """The run's seed: from ``random_state``, else fresh OS entropy drawn once per fit."""
        if self.random_state is not None:
            return int(np.random.SeedSequence(self.random_state).generate_state(1)[0])
        if getattr(self, "_entropy_seed", None) is None:
            self._entropy_seed = int(np.random.SeedSequence().generate_state(1)[0])
        return self._entropy_seed

    def _fit(self, X, valid=None, *, checkpoint_dir=None, resume=False, callbacks=()):
        self._entropy_seed = None
        self._check_common()
        self._prepare(X)
        self.module_ = self._seeded_build(X.shape[1])
        generator = torch.Generator(device=self.device_)
        generator.manual_seed(self._seed() + 1)
        self.generator_ = generator
        loader = DeviceCSR(X, self.device_)
        ctx = training.TrainState(self.module_, self._configure_optimizers(self.module_), loader, generator,
                                  self.device_, self._fingerprint(X))
        self._ctx = ctx
        try:
            training.run(self, ctx, valid, epochs=int(self.epochs), patience=self.patience, metric=self.valid_metric,
                         show_progress=self.show_progress, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
                         resume=resume)
        finally:
            self._ctx = None
        self.history_ = ctx.history
        self.best_epoch_ = ctx.best_epoch if ctx.best_epoch > 0 else ctx.epoch
        self.generator_ = None

    def _prepare(self, X) -> None:
        """Hook for models that learn statistics of X before building the module."""

    # ------------------------------------------------------------------ scoring
    @torch.no_grad()
    def _score_rows(self, X):
        # ranking runs in float32 even with AMP: bfloat16 logits tie too often for a stable top-k
        self.module_.eval()
        return self._forward_scores(densify_rows(X, self.device_)).float()

    def _get_state(self):
        return dict(self.module_.state_dict())

    def _set_state(self, tensors):
        self._prepare_from_state(tensors)
        self.module_ = self._seeded_build(self.n_items_)
        self.module_.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("extra.")})
        self.module_.eval()

    def _prepare_from_state(self, tensors) -> None:
        """Hook for models that keep extra (non-module) tensors in their state."""
