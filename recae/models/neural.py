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

from .. import distributed
from .. import train as training
from ..data.batching import DeviceCSR, csr_coords, densify_rows, row_chunks
from ..exceptions import DataError, TrainingError
from .base import Recommender, _check_scores

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


def dropout(x: torch.Tensor, p: float, generator) -> torch.Tensor:
    """Inverted dropout drawing from ``generator`` (``F.dropout`` would use the global RNG).

    ``generator`` may also be a :class:`recae.distributed.BatchSlice` (a rank's rows of a
    global batch), whose mask is this rank's rows of the global batch's mask.
    """
    if p <= 0 or generator is None:
        return x
    keep = distributed.rand(x.shape, generator, x.device) >= p
    return x * keep / (1.0 - p)


def gaussian_like(x: torch.Tensor, generator) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` from a generator or a ``BatchSlice``."""
    return distributed.randn(x.shape, generator, x.device)


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


class LazyScores:
    """Scores kept as ``layer(hidden)`` so top-k can run over item chunks (never B × I at once).

    Parameters
    ----------
    hidden : Tensor of shape (B, h)
    layer : nn.Linear (h → I)
    """

    def __init__(self, hidden: torch.Tensor, layer: nn.Linear):
        self.hidden, self.layer = hidden, layer

    def chunk(self, start: int, stop: int) -> torch.Tensor:
        w, b = self.layer.weight[start:stop], self.layer.bias[start:stop]
        return nn.functional.linear(self.hidden.to(w.dtype), w, b).float()

    def float(self) -> "LazyScores":
        return self


def chunked_topk(scores: LazyScores, k: int, n_items: int, item_chunk: int, seen, mask, check) -> tuple:
    """Top-``k`` of ``scores`` over item chunks: peak memory B × (item_chunk + k).

    ``seen`` (CSR rows or None) and ``mask`` (bool (I,) tensor or None) exclude items;
    ``check(s)`` validates each chunk (NaN guard). Returns (values, indices) tensors (B, k).
    """
    best_v = best_i = None
    for lo in range(0, n_items, item_chunk):
        hi = min(lo + item_chunk, n_items)
        s = scores.chunk(lo, hi)
        check(s)
        if mask is not None:
            s = s.masked_fill(~mask[lo:hi], -torch.inf)
        if seen is not None:
            part = seen[:, lo:hi]
            if part.nnz:
                s[csr_coords(part, s.device)] = -torch.inf
        top = torch.topk(s, min(k, hi - lo), dim=1)
        v, i = top.values, top.indices + lo
        if best_v is not None:
            v, i = torch.cat([best_v, v], dim=1), torch.cat([best_i, i], dim=1)
            keep = torch.topk(v, min(k, v.shape[1]), dim=1)
            v, i = keep.values, torch.gather(i, 1, keep.indices)
        best_v, best_i = v, i
    return best_v, best_i


class NeuralRecommender(Recommender):
    """Base class of the neural autoencoders (see the module docstring)."""

    _abstract = True  # not a model itself: kept out of MODEL_REGISTRY
    #: The ``optimizer=`` names this model accepts.
    _optimizers = OPTIMIZERS

    #: Hyper-parameters every neural model takes (subclasses list them in ``__init__``).
    _fit_options = ("checkpoint_dir", "resume", "callbacks", "local_rows")

    def _check_common(self) -> None:
        from ..metrics import RANKING_METRICS

        name, _, k = str(self.valid_metric).partition("@")
        if name not in RANKING_METRICS or not (k == "" or k.isdigit() and int(k) > 0):
            raise DataError(f"valid_metric must look like 'ndcg@100' with a metric from {sorted(RANKING_METRICS)}; "
                            f"got {self.valid_metric!r}")
        self._check_training_settings()

    def _check_training_settings(self) -> None:
        """Patience, optimizer, epochs, batch size and lr: shared by every model on the training loop."""
        if self.patience is not None and (isinstance(self.patience, bool) or not isinstance(self.patience, (int, np.integer))
                                          or self.patience < 1):
            raise DataError(f"patience must be a positive integer or None; got {self.patience!r}")
        if self.optimizer not in self._optimizers:
            raise DataError(f"optimizer must be one of {sorted(self._optimizers)}; got {self.optimizer!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"{name} must be a positive integer; got {value!r}")
        if not self.lr > 0:
            raise DataError(f"lr must be > 0; got {self.lr!r}")
        decay = getattr(self, "weight_averaging", None)
        if decay is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float, np.integer, np.floating))
                                  or not 0.0 <= decay < 1.0):
            raise DataError(f"weight_averaging must be None or a decay in [0, 1), e.g. 0.98; got {decay!r}")

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

    def _fit(self, X, valid=None, *, checkpoint_dir=None, resume=False, callbacks=(), local_rows=False):
        self._entropy_seed = None
        self._check_common()
        self._prepare(X)
        if distributed.launched_by_torchrun():
            distributed.init()  # under torchrun the same fit call joins the job's process group
        if distributed.is_distributed():
            self.device_ = distributed.local_device(self.device_)
        local_rows = bool(local_rows) and distributed.is_distributed()
        if local_rows and not self._local_rows_ok:
            raise TrainingError(f"{type(self).__name__} cannot train on rank-local rows ({self._local_rows_why}); "
                                "pass the whole log to fit on every rank")
        self.module_ = self._seeded_build(X.shape[1])
        generator = torch.Generator(device=self.device_)
        # rank-local shards each draw their own order and noise; otherwise all ranks replay one stream
        generator.manual_seed(self._seed() + 1 + (distributed.rank() if local_rows else 0))
        self.generator_ = generator
        loader = self._make_loader(X)
        fingerprint = self._fingerprint(X)
        dist_ctx = None
        if distributed.is_distributed() and not self._distributed_ok:
            raise TrainingError(f"{type(self).__name__} trains in one process; run it outside torchrun")
        if distributed.is_distributed():
            dist_ctx = distributed.DistContext(self.module_, self.device_, self._ddp_find_unused)
            if local_rows:
                dist_ctx.local_data = True
                loader = distributed.LocalShardLoader(loader, dist_ctx)
                # the data differ by rank; hyper-parameters and the catalogue must not
                fingerprint = self._fingerprint(X[:0])
            dist_ctx.check_same(fingerprint, "data or hyper-parameters")
            logger.info("%s: data-parallel on rank %d of %d (%s)", type(self).__name__, dist_ctx.rank,
                        dist_ctx.world, self.device_)
        decay = getattr(self, "weight_averaging", None)
        average = training.WeightAverage(self.module_, decay) if decay else None
        ctx = training.TrainState(self.module_, self._configure_optimizers(self.module_), loader, generator,
                                  self.device_, fingerprint, higher_is_better=self._higher_is_better, dist=dist_ctx,
                                  average=average)
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

    #: Orientation of ``valid_metric`` (False for errors such as RMSE).
    _higher_is_better = True
    #: Whether the model may train data-parallel under torchrun.
    _distributed_ok = True

    def _make_loader(self, X):
        """The training rows on the device: anything with ``batches`` and ``gather`` (see recae.train)."""
        return DeviceCSR(X, self.device_)

    def _batch_weight(self, ctx, rows) -> float:
        """What a batch loss is a mean over, counted for ``rows`` (rows here; ratings for some models)."""
        return float(len(rows))

    #: Whether some steps leave parameters out of the graph (DDP must then look for them).
    _ddp_find_unused = False
    #: Whether ``fit(..., local_rows=True)`` is possible (no per-user parameters).
    _local_rows_ok = True
    _local_rows_why = "its per-user parameters need every user on every rank"

    def save(self, path) -> None:
        """Save the fitted model (see :meth:`Recommender.save`); under torchrun only rank 0 writes."""
        if not distributed.is_main_process():
            logger.debug("rank %d: save(%r) left to rank 0", distributed.rank(), path)
            return
        super().save(path)

    # ------------------------------------------------------------------ sampled softmax
    def _n_negatives(self) -> int | None:
        return check_sampled_softmax(getattr(self, "sampled_softmax", None), self.n_items_)

    def _output_nll(self, hidden: torch.Tensor, layer: nn.Linear, x: torch.Tensor, generator) -> torch.Tensor:
        """Multinomial NLL of ``layer(hidden)``: the full softmax, or the sampled one when asked."""
        n_neg = self._n_negatives()
        if n_neg is None or n_neg >= self.n_items_:
            return multinomial_nll(layer(hidden), x)
        return sampled_multinomial_nll(hidden, layer, x, n_neg, generator)

    # ------------------------------------------------------------------ scoring
    #: Catalogues larger than this are ranked in item chunks of this size (memory ~ users × chunk).
    item_chunk = 1 << 18

    @torch.no_grad()
    def _score_rows(self, X):
        # ranking runs in float32 even with AMP: bfloat16 logits tie too often for a stable top-k
        self.module_.eval()
        x = densify_rows(X, self.device_)
        if getattr(self, "_lazy_scores", False):
            return LazyScores(*self._decoder_input(x))
        return self._forward_scores(x).float()

    def _decoder_input(self, x: torch.Tensor) -> tuple[torch.Tensor, nn.Linear]:
        """(hidden, output layer) with ``output_layer(hidden) == _forward_scores(x)``."""
        raise NotImplementedError

    @torch.no_grad()
    def _rank(self, score_chunk, seen, n_rows, n, mask):
        if self.n_items_ <= self.item_chunk:
            return super()._rank(score_chunk, seen, n_rows, n, mask)
        # huge catalogue: score users in blocks and items in chunks, merging running top-k lists,
        # so no users × items block is ever formed (peak ~ block × (item_chunk + k) floats)
        n_candidates = self.n_items_ if mask is None else int(mask.sum())
        k = min(n, n_candidates)
        ids = np.empty((n_rows, k), dtype=np.int64)
        scores = np.empty((n_rows, k), dtype=np.float32)
        self._lazy_scores = True
        try:
            for start, stop in row_chunks(n_rows, self.item_chunk):
                lazy = score_chunk(start, stop)
                part_seen = seen[start:stop] if seen is not None else None
                v, i = chunked_topk(lazy, k, self.n_items_, self.item_chunk, part_seen, mask,
                                    lambda s, a=start: _check_scores(s, self, a))
                ids[start:stop] = i.cpu().numpy()
                scores[start:stop] = v.cpu().numpy()
        finally:
            self._lazy_scores = False
        ids[~np.isfinite(scores)] = -1
        return ids, scores

    def _get_state(self):
        return dict(self.module_.state_dict())

    def _set_state(self, tensors):
        self._prepare_from_state(tensors)
        self.module_ = self._seeded_build(self.n_items_)
        self.module_.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("extra.")})
        self.module_.eval()

    def _prepare_from_state(self, tensors) -> None:
        """Hook for models that keep extra (non-module) tensors in their state."""
