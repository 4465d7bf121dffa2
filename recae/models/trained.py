"""What every model trained by :class:`recae.train.Trainer` shares: settings, seeding, optimizers.

Mixed into the implicit-feedback autoencoders, the rating models and the image autoencoder.
A class using it provides ``_build(shape) -> nn.Module`` and calls :meth:`Trained._train`
with a function that returns its :class:`~recae.train.TrainSpec`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math

import numpy as np
import torch

from .. import distributed
from ..exceptions import DataError, TrainingError
from ..train import Trainer, TrainSpec, seeded_build
from .settings import check_settings

logger = logging.getLogger(__name__)

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
              "rmsprop": torch.optim.RMSprop}


def positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value > 0


class Trained:
    """Mixin of the trained models (see the module docstring)."""

    #: The ``optimizer=`` names this model accepts.
    optimizers = OPTIMIZERS
    #: Extra keyword arguments ``fit`` takes.
    fit_options = ("checkpoint_dir", "resume", "callbacks", "local_rows")
    #: Hyper-parameters that do not change what is learned, so a resumed run may differ in them.
    resumable = ("epochs", "patience", "show_progress", "device", "amp")
    #: Why ``fit(..., local_rows=True)`` is impossible (None: it is possible).
    no_local_rows: str | None = None

    def _check_training_settings(self) -> None:
        """Patience, optimizer, epochs, batch size, lr and weight averaging, and the shared settings."""
        check_settings(self)
        if self.patience is not None and not positive_int(self.patience):
            raise DataError(f"patience must be a positive integer or None; got {self.patience!r}")
        if not isinstance(self.optimizer, str) or self.optimizer not in self.optimizers:
            raise DataError(f"optimizer must be one of {sorted(self.optimizers)}; got {self.optimizer!r}")
        for name in ("epochs", "batch_size"):
            if not positive_int(getattr(self, name)):
                raise DataError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        if isinstance(self.lr, (bool, np.bool_)) or not isinstance(self.lr, (int, float, np.integer, np.floating)) \
                or not 0 < self.lr < math.inf:
            raise DataError(f"lr must be a finite number > 0; got {self.lr!r}")
        decay = getattr(self, "weight_averaging", None)
        if decay is not None and (isinstance(decay, bool) or not isinstance(decay, (int, float, np.integer, np.floating))
                                  or not 0.0 <= decay < 1.0):
            raise DataError(f"weight_averaging must be None or a decay in [0, 1), e.g. 0.98; got {decay!r}")

    def _seed(self) -> int:
        """The run's seed: from ``random_state``, else fresh OS entropy drawn once per fit."""
        if self.random_state is not None:
            return int(np.random.SeedSequence(self.random_state).generate_state(1)[0])
        if getattr(self, "_entropy_seed", None) is None:
            self._entropy_seed = int(np.random.SeedSequence().generate_state(1)[0])
        return self._entropy_seed

    def _fingerprint(self, *arrays, valid=None) -> str:
        """Hash of the settings that change what is learned and of the data (int64 shape first).

        ``valid``: the validation (fold-in, target) pair, or None for none; a resumed run scored
        on other validation users (or none) would pick its best epoch among incomparable scores.
        """
        params = {k: v for k, v in self.get_params().items() if k not in self.resumable}
        h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        if valid is not None:  # without validation the hash is what it always was: old checkpoints resume
            h.update(b"validation")
            for m in valid:
                for a in (np.asarray(m.shape, np.int64), m.indptr.astype(np.int64), m.indices.astype(np.int64),
                          m.data.astype(np.float32)):
                    h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    def _optimizers(self, module) -> list[torch.optim.Optimizer]:
        return [self._make_optimizer(module.parameters())]

    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.optimizer](params, lr=self.lr, weight_decay=self.weight_decay)

    def _amp_enabled(self) -> bool:
        """bfloat16 autocast for training on GPUs that support it (never for ranking)."""
        return (self.device_.type == "cuda" and self.amp in (True, "auto")
                and torch.cuda.is_bf16_supported())

    def _penalty(self, module) -> torch.Tensor | float:
        """L1 on the weight matrices (``l1``)."""
        if not self.l1:
            return 0.0
        return self.l1 * sum(p.abs().sum() for n, p in module.named_parameters() if p.ndim > 1)

    def _spec(self, loader, fingerprint: str, validate, **options) -> TrainSpec:
        """The TrainSpec of ``module_`` with this model's loss, optimizers, penalty, metric and AMP."""
        defaults = {"metric": getattr(self, "valid_metric", "loss"), "penalty": self._penalty, "amp": self._amp_enabled()}
        return TrainSpec(module=self.module_, loss=self._loss, loader=loader, optimizers=self._optimizers(self.module_),
                         fingerprint=fingerprint, validate=validate, **{**defaults, **options})

    def _train(self, shape, make_spec, *, checkpoint_dir=None, resume=False, callbacks=(), local_rows=False) -> None:
        """Build ``module_`` for ``shape`` and train it; ``make_spec(trainer)`` returns the TrainSpec."""
        if callable(callbacks) or not isinstance(callbacks, (list, tuple)) or not all(map(callable, callbacks)):
            raise DataError(f"callbacks must be a list of functions cb(model, epoch, logs) -> bool; got {callbacks!r}")
        if resume and checkpoint_dir is None:
            raise DataError("resume=True continues from a checkpoint: pass the checkpoint_dir it was written to")
        self._entropy_seed = None  # a fit without random_state draws a fresh seed
        trainer = Trainer(name=type(self).__name__, device=self.device_, seed=self._seed(),
                          batch_size=int(self.batch_size), epochs=int(self.epochs), patience=self.patience,
                          show_progress=self.show_progress, local_rows=local_rows)
        if trainer.local_rows and self.no_local_rows:
            raise TrainingError(f"{type(self).__name__} cannot train on rank-local rows ({self.no_local_rows}); "
                                "pass the whole log to fit on every rank")
        self.device_ = trainer.device
        self.module_ = trainer.build(lambda: self._build(shape))
        spec = make_spec(trainer)
        self._trainer = trainer  # callbacks may look at trainer.state (e.g. the weight average)
        try:
            state = trainer.fit(spec, owner=self, callbacks=callbacks, checkpoint_dir=checkpoint_dir, resume=resume)
        finally:
            self._trainer = None
        self.history_ = state.history
        self.best_epoch_ = state.best_epoch if state.best_epoch > 0 else state.epoch
        if spec.validate is not None and math.isfinite(state.best_score):
            # what GET /model shows (and a model file keeps): the score the kept epoch was chosen by
            self.quality_ = {f"valid_{spec.metric}": float(state.best_score), "epoch": int(self.best_epoch_),
                             "source": "fit(valid=...): the validation users given to fit"}

    def _load_module(self, shape, tensors: dict) -> None:
        """``module_`` from saved tensors: the same seeded build as fit, its weights then overwritten."""
        self.module_ = seeded_build(lambda: self._build(shape), self._seed(), self.device_)
        self.module_.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("extra.")})
        self.module_.eval()

    # state hooks of the recommenders: extra (non-module) tensors, and caches derived from the weights
    def _extra_state(self) -> dict:
        return {}

    def _prepare_from_state(self, tensors) -> None:
        """Read back what ``_extra_state`` saved, before the module is rebuilt."""

    def _refresh(self) -> None:
        """Recompute caches derived from the weights (after training or loading)."""

    def get_state(self):
        return {**self.module_.state_dict(), **self._extra_state()}

    def set_state(self, tensors):
        self._prepare_from_state(tensors)
        self._load_module(self.n_items_, tensors)
        self._refresh()

    def save(self, path) -> None:
        """Save the fitted model; under torchrun only rank 0 writes."""
        if not distributed.is_main_process():
            logger.debug("rank %d: save(%r) left to rank 0", distributed.rank(), path)
            return
        super().save(path)
