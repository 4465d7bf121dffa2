"""The one training loop of every trained recae model (recommenders, rating models, images).

A model builds its module with :meth:`Trainer.build` (seeded, on the trainer's device) and
hands :meth:`Trainer.fit` a :class:`TrainSpec`: the module, its loss, the batch source, the
optimizers and a ``validate()`` callable. The trainer owns the rest: seeding, the epoch loop,
validation and the best state, early stopping, bfloat16 autocast, weight averaging,
crash-safe checkpoints that ``resume=True`` continues exactly, progress bars, callbacks and
data-parallel training under ``torchrun`` (DistributedDataParallel).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob
import logging
import math
import os
import time
from typing import Any, Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import CHECKPOINT, WeightAverage, load_checkpoint, save_checkpoint
from .exceptions import DataError, TrainingError

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT", "TrainSpec", "TrainState", "Trainer", "WeightAverage"]


def _no_penalty(module: nn.Module) -> float:
    return 0.0


def _rows_in(state: "TrainState", rows) -> float:
    return float(len(rows))


@dataclasses.dataclass
class TrainSpec:
    """What a model hands the :class:`Trainer`: everything that differs between models.

    ``loss(state, batch, rows)`` is the mean loss of one batch (``state.noise`` is where it
    draws randomness); ``loader`` has ``batches(batch_size, shuffle, generator)``,
    ``gather(rows)`` and ``n_rows``; ``fingerprint`` hashes the data and the settings that
    change what is learned (checkpoints refuse others; ``shard_fingerprint`` is what ranks
    share with rank-local rows). ``validate()`` scores the module as it stands (``metric``,
    oriented by ``higher_is_better``). ``penalty(module)`` is added to every batch loss;
    ``batch_weight(state, rows)`` is what a batch loss is a mean over (data-parallel
    weighting). ``epoch(trainer)`` replaces the default epoch (one pass of ``loss``) for
    models that alternate phases; ``full_batch`` runs L-BFGS on the whole objective instead.
    ``weight_averaging`` is the decay of a :class:`WeightAverage` (validation, the kept state
    and the result use the average); ``amp`` turns on bfloat16 autocast;
    ``find_unused_parameters`` is for DDP when some steps leave parameters out of the graph.
    """

    module: nn.Module
    loss: Callable
    loader: Any
    optimizers: list
    fingerprint: str
    validate: Callable[[], float] | None = None
    metric: str = "ndcg@100"
    higher_is_better: bool = True
    penalty: Callable = _no_penalty
    batch_weight: Callable = _rows_in
    epoch: Callable | None = None
    full_batch: bool = False
    weight_averaging: float | None = None
    amp: bool = False
    find_unused_parameters: bool = False
    shard_fingerprint: str | None = None


def warn_if_oversubscribed(name: str, device) -> None:
    """Say so when torch's CPU threads exceed the idle cores: its spin-waiting threads then slow it badly."""
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return
    others = max(load - 1.0, 0.0)  # this process's own running thread is part of the load
    if device.type == "cpu" and threads > 1 and others + threads > cores + 0.5:
        logger.warning("%s: %d torch threads on %d cores with a load of %.1f already; on a busy machine "
                       "torch.set_num_threads(1) (the CLI's --threads 1) is often several times faster",
                       name, threads, cores, load)


def seeded_build(make: Callable[[], nn.Module], seed: int, device) -> nn.Module:
    """``make()`` with the CPU generator seeded by ``seed`` (then restored), moved to ``device``."""
    # modules are built on the CPU and moved, so only the CPU generator draws the initial weights;
    # fork_rng restores it afterwards and no CUDA generator is touched
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        module = make()
    return module.to(device)


class TrainState:
    """What an epoch needs and what a checkpoint holds (losses read ``noise``, ``step`` and ``loader``)."""

    def __init__(self, spec: TrainSpec, loader, generator, device, dist=None, average: WeightAverage | None = None):
        self.module = spec.module
        self.optimizers = spec.optimizers
        self.loader = loader
        self.generator = generator
        self.device = device
        self.params_fingerprint = spec.fingerprint
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer updates so far (for schedules such as KL annealing)
        self.higher_is_better = spec.higher_is_better
        self.best_score = -math.inf if spec.higher_is_better else math.inf
        self.best_epoch = -1
        self.best_state = None
        self.bad_epochs = 0
        self.history: list[dict] = []
        self.dist = dist
        self.average = average
        self.batch_slice = None  # set per batch when data-parallel

    @property
    def noise(self):
        """Where a loss draws its random noise: the generator, or this rank's slice of the global batch's."""
        return self.generator if self.batch_slice is None else self.batch_slice


class Trainer:
    """Trains one module (see the module docstring).

    ``name`` labels the progress bar and errors; under ``torchrun`` each rank uses its own
    ``device``; ``seed`` seeds the initial weights and the generator of shuffling and noise;
    ``patience`` counts epochs without a better validation score; ``local_rows``: under
    ``torchrun`` each rank was given only its own rows (shards of the log).
    """

    def __init__(self, *, name: str, device: torch.device, seed: int, batch_size: int, epochs: int,
                 patience: int | None = None, show_progress: bool = False, local_rows: bool = False):
        if distributed.launched_by_torchrun():
            distributed.init()  # under torchrun the same fit call joins the job's process group
        self.is_distributed = distributed.is_distributed()
        self.device = distributed.local_device(device) if self.is_distributed else device
        self.local_rows = bool(local_rows) and self.is_distributed
        seed = distributed.rank0_value(seed, self.device)  # random_state=None: each rank drew its own
        self.name, self.seed, self.batch_size, self.epochs = name, seed, batch_size, epochs
        self.patience, self.show_progress = patience, show_progress
        self.generator = torch.Generator(device=self.device)
        # rank-local shards each draw their own order and noise; otherwise all ranks replay one stream
        self.generator.manual_seed(seed + 1 + (distributed.rank() if self.local_rows else 0))
        self.state: TrainState | None = None
        warn_if_oversubscribed(self.name, self.device)

    def build(self, make: Callable[[], nn.Module]) -> nn.Module:
        """``make()`` with the CPU generator seeded (then restored), moved to the device."""
        return seeded_build(make, self.seed, self.device)

    # ------------------------------------------------------------------ fit
    def fit(self, spec: TrainSpec, *, owner=None, callbacks=(), checkpoint_dir=None, resume: bool = False) -> TrainState:
        """Train for up to ``epochs`` epochs; the module ends with the best (or final, averaged) weights.

        ``callbacks`` are ``cb(owner, epoch, logs) -> bool`` (True stops). With several ranks,
        rank 0 alone validates and writes checkpoints; its score and its callbacks' stop request
        are broadcast, so every rank takes the same decisions.
        """
        if checkpoint_dir is not None and not (isinstance(checkpoint_dir, (str, os.PathLike)) and os.fspath(checkpoint_dir)):
            raise DataError(f"checkpoint_dir must be a folder path (str or os.PathLike); got {checkpoint_dir!r}")
        if not isinstance(resume, bool):  # "no" is truthy
            raise DataError(f"resume must be True or False; got {resume!r}")
        loader, dist = spec.loader, None
        if self.is_distributed:
            dist = distributed.DistContext(spec.module, self.device, spec.find_unused_parameters)
            fingerprint = spec.fingerprint
            if self.local_rows:
                dist.local_data = True
                loader = distributed.LocalShardLoader(loader, dist)
                fingerprint = spec.shard_fingerprint  # the data differ by rank; settings must not
            dist.check_same(fingerprint, "data or hyper-parameters")
            logger.info("%s: data-parallel on rank %d of %d (%s)", self.name, dist.rank, dist.world, self.device)
        average = WeightAverage(spec.module, spec.weight_averaging) if spec.weight_averaging else None
        self.spec = spec
        self.state = state = TrainState(spec, loader, self.generator, self.device, dist, average)
        try:
            self._loop(owner, callbacks, checkpoint_dir, resume)
        finally:
            self.state = None
        return state

    def _loop(self, owner, callbacks, checkpoint_dir, resume) -> None:
        state, spec = self.state, self.spec
        path = os.path.join(os.fspath(checkpoint_dir), CHECKPOINT) if checkpoint_dir is not None else None
        main = state.dist is None or state.dist.is_main
        ours = False  # whether the checkpoint at path is this run's (saved or resumed), not an older one's
        if path is not None:
            if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
                raise DataError(f"checkpoint_dir must be a folder; {os.fspath(checkpoint_dir)!r} is a file")
            os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
            for stale in glob.glob(os.path.join(os.fspath(checkpoint_dir), ".recae-*.tmp")) if main else ():
                with contextlib.suppress(FileNotFoundError):  # left by a process killed while writing a checkpoint
                    os.remove(stale)
            if resume and os.path.exists(path):
                load_checkpoint(path, state)
                ours = True
                if state.epoch > self.epochs:  # the model would hold more epochs than its setting says
                    raise TrainingError(f"checkpoint {path!r} is past epoch {state.epoch}, beyond epochs={self.epochs}; "
                                        f"resume with epochs >= {state.epoch}, or remove the checkpoint")
                logger.info("resuming from %s after epoch %d", path, state.epoch)
        # None: tqdm's own rule, a bar only when stderr is a terminal
        disable = True if not main else (None if self.show_progress is None else not self.show_progress)
        bar = tqdm(total=self.epochs, initial=state.epoch, desc=self.name, disable=disable, leave=False)
        validating = spec.validate is not None
        try:
            while state.epoch < self.epochs and not (self.patience is not None and validating
                                                      and state.bad_epochs >= self.patience):
                t0 = time.perf_counter()
                state.module.train()
                if spec.full_batch:
                    loss = self.full_batch_epoch()
                elif spec.epoch is not None:
                    loss = spec.epoch(self)
                else:
                    loss = self.run_batches(state.optimizers, spec.loss)
                if not math.isfinite(loss) or not self._weights_finite():
                    raise TrainingError(
                        f"{self.name}: the training "
                        + (f"loss became {loss}" if not math.isfinite(loss) else "weights became NaN or infinite")
                        + f" in epoch {state.epoch + 1}; try a lower lr or more weight decay"
                        + (f" (the last good checkpoint, after epoch {state.epoch}, is kept at {path}: resume "
                           "continues it with the same settings; delete it to start over with others)" if ours else ""))
                state.epoch += 1
                logs = {"epoch": state.epoch, "loss": loss}
                if state.average is not None:
                    state.average.swap_in()  # validate and keep the averaged weights
                try:
                    self._validate(logs, main)
                finally:
                    if state.average is not None:
                        state.average.swap_out()  # the optimizer goes on from the raw weights
                logs["seconds"] = time.perf_counter() - t0
                state.history.append(logs)
                if path is not None and main:
                    save_checkpoint(path, state)
                    ours = True
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k not in ("epoch", "seconds")})
                logger.debug("epoch %s", logs)
                stop = any(cb(owner, state.epoch, logs) for cb in callbacks)
                if state.dist is not None:
                    stop = bool(state.dist.broadcast_float(float(stop)))  # rank 0's callbacks decide for all
                if stop:
                    break
        finally:
            bar.close()
        if state.best_state is not None:
            state.module.load_state_dict(state.best_state)
        elif state.average is not None:
            state.average.swap_in()  # without validation the result is the final average
            state.average.raw = None
        state.module.eval()

    def _weights_finite(self) -> bool:
        """Whether every weight is finite: a finite loss can come before a step that overflowed them."""
        return all(bool(torch.isfinite(p).all()) for p in self.state.module.parameters())

    def _validate(self, logs: dict, main: bool) -> None:
        """Score the module (rank 0; broadcast), log it and keep the best state."""
        state, spec = self.state, self.spec
        if spec.validate is None:
            return
        state.module.eval()
        score = spec.validate() if main else None
        if state.dist is not None:
            score = state.dist.broadcast_float(score)
        logs[spec.metric] = score
        if score > state.best_score if state.higher_is_better else score < state.best_score:
            state.best_score, state.best_epoch, state.bad_epochs = score, state.epoch, 0
            state.best_state = {k: v.detach().clone() for k, v in state.module.state_dict().items()}
        else:
            state.bad_epochs += 1

    # ------------------------------------------------------------------ batches
    def run_batches(self, optimizers, loss_fn) -> float:
        """One pass over shuffled batches updating ``optimizers``; the mean batch loss.

        Data-parallel, every rank walks the same global batches and gathers only its part, its
        loss weighted by ``world × its share`` of the batch (``batch_weight``: rows by default), so
        DDP's gradient average is the gradient of the global batch's loss.
        """
        state, d = self.state, self.state.dist
        # float64 where the ranks' shares are summed; float32 in one process, as the frozen loss histories were
        total = torch.zeros((), dtype=torch.float32 if d is None else torch.float64, device=self.device)
        n = 0
        for rows in state.loader.batches(self.batch_size, shuffle=True, generator=state.generator):
            local, weight = (rows, 1.0) if d is None or d.local_data else self._local_part(rows)
            x = state.loader.gather(local)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            try:
                step = self._weighted_step if d is None else functools.partial(d.ddp, self._weighted_step)
                loss, objective = step(loss_fn, x, local, weight)
            finally:
                state.batch_slice = None
            objective.backward()
            for opt in optimizers:
                opt.step()
            state.step += 1
            if state.average is not None:
                # rank-local shards differ in size; every rank steps ceil(largest / part) times a pass
                pass_rows = state.loader.largest if d is not None and d.local_data else state.loader.n_rows
                state.average.update(len(rows) / pass_rows)
            total += loss.detach().to(total.dtype) * (weight / (d.world if d is not None else 1))
            n += 1
        if d is not None:
            total, = d.all_reduce_sum([float(total)])
        return float(total) / max(n, 1)

    def _local_part(self, rows):
        """This rank's rows of a global batch and its loss weight; sets the batch's noise slice."""
        state, d = self.state, self.state.dist
        local, start = d.local_rows(rows)
        whole = self.spec.batch_weight(state, rows)
        weight = self.spec.batch_weight(state, local) * d.world / whole if whole > 0 else 0.0
        if len(local) == 0:  # a last batch smaller than the world: join the all-reduce with a zero-weight row
            local, start, weight = rows[:1], 0, 0.0
        state.batch_slice = distributed.BatchSlice(state.generator, len(rows), start)
        return local, weight

    def full_batch_epoch(self) -> float:
        """One ``optimizer.step(closure)`` of full-batch L-BFGS; the objective at the epoch's start.

        The closure sums the batch losses (each weighted by its share of the objective) and the
        penalty, back-propagating batch by batch so only one dense batch is ever held; the rows
        are visited in a fixed order, so the objective is deterministic.
        """
        state, spec = self.state, self.spec
        if state.dist is not None:  # the models refuse this earlier, with their own words
            raise TrainingError(f"{self.name}: full-batch L-BFGS is not data-parallel")
        opt, = state.optimizers
        batches = list(state.loader.batches(self.batch_size, shuffle=False))
        # a batch loss is a mean over rows (or ratings); weighting by its share sums them to the objective
        weights = [spec.batch_weight(state, rows) for rows in batches]
        shares = [w / max(sum(weights), 1e-12) for w in weights]

        def closure():
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for rows, share in zip(batches, shares):
                loss = spec.loss(state, state.loader.gather(rows), rows) * share
                loss.backward()
                total += float(loss.detach())
            penalty = spec.penalty(state.module)
            if torch.is_tensor(penalty):
                penalty.backward()
                total += float(penalty.detach())
            return torch.tensor(total)

        loss = float(opt.step(closure))
        state.step += 1
        return loss  # the loop checks the weights before they reach a checkpoint

    def _weighted_step(self, loss_fn, x, rows, weight: float):
        # runs inside DDP's forward so its reducer sees the whole graph (loss and penalty)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.spec.amp):
            loss = loss_fn(self.state, x, rows)
        return loss, loss * weight + self.spec.penalty(self.state.module)
