"""The generic training loop shared by every neural model.

The model owns its module, its loss and (when special) its epoch; this loop runs epochs,
validates, keeps the best state by a validation metric, stops early, shows progress,
calls callbacks and writes crash-safe checkpoints that ``resume=True`` continues exactly.
"""

from __future__ import annotations

import glob
import json
import logging
import math
import os
import time

import numpy as np
import torch
from safetensors import SafetensorError
from tqdm.auto import tqdm

from .exceptions import ModelFileError, TrainingError
from .atomic import atomic_save_tensors, read_tensors
from .metrics import RANKING_METRICS

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.safetensors"


def scored_rows(valid) -> np.ndarray:
    """Rows of a (fold_in, target) pair whose target is non-empty: the users a metric averages over."""
    return np.flatnonzero(np.diff(valid[1].indptr) > 0)


def validation_score(model, valid, metric: str, score_chunk=None) -> float:
    """Mean of ``metric`` (e.g. ``"ndcg@100"``) over validation users with a non-empty target.

    ``score_chunk(start, stop)`` may supply the scores of scored rows ``start:stop``;
    by default the model folds in their history.
    """
    name, _, k = metric.partition("@")
    fold_in, target = valid
    k = min(int(k or 100), target.shape[1])  # a small catalogue caps the cutoff
    rows = scored_rows(valid)
    X = fold_in[rows]
    score_chunk = score_chunk or (lambda a, b: model._score_rows(X[a:b]))
    top, _ = model._rank(score_chunk, X, len(rows), k, None)
    values = RANKING_METRICS[name](top, target[rows], k)
    return float(np.nanmean(values))


# ---------------------------------------------------------------------- checkpoints
def _flatten_optimizer(i: int, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    scalars = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"opt{i}.{pid}.{key}"] = value.detach().cpu().contiguous()
            elif isinstance(value, list):  # L-BFGS keeps its curvature history in lists (with None slots)
                scalars[f"{pid}.{key}"] = {"list": len(value), "none": [j for j, v in enumerate(value) if v is None]}
                for j, v in enumerate(value):
                    if v is not None:
                        tensors[f"opt{i}.{pid}.{key}@{j}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    meta[f"opt{i}"] = {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(i: int, opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict = {}
    prefix = f"opt{i}."
    for name, value in tensors.items():
        if name.startswith(prefix):
            pid, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    lists = {}
    for name, value in meta[f"opt{i}"]["scalars"].items():
        pid, key = name.split(".", 1)
        if isinstance(value, dict) and "list" in value:
            value = lists[(int(pid), key)] = [None] * int(value["list"])
        state.setdefault(int(pid), {})[key] = value
    for (pid, key), items in lists.items():
        for j in range(len(items)):
            items[j] = state[pid].pop(f"{key}@{j}", None)
    opt.load_state_dict({"state": state, "param_groups": meta[f"opt{i}"]["param_groups"]})


def save_checkpoint(path: str, ctx: "TrainState") -> None:
    tensors = {f"module.{k}": v.detach().cpu().contiguous() for k, v in ctx.module.state_dict().items()}
    if ctx.best_state is not None:
        tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in ctx.best_state.items()})
    tensors["rng"] = ctx.generator.get_state().cpu()
    if ctx.average is not None:  # saved between epochs, when the module holds the raw weights
        tensors.update({f"average.{i}": a.detach().cpu().contiguous() for i, a in enumerate(ctx.average.avg)})
        tensors["average.remaining"] = torch.tensor(ctx.average.remaining, dtype=torch.float64)
    meta = {"epoch": ctx.epoch, "best_score": ctx.best_score, "best_epoch": ctx.best_epoch, "bad_epochs": ctx.bad_epochs,
            "history": ctx.history, "step": ctx.step, "params": ctx.params_fingerprint}
    for i, opt in enumerate(ctx.optimizers):
        _flatten_optimizer(i, opt, tensors, meta)
    atomic_save_tensors(tensors, path, {"recae_checkpoint": json.dumps(meta, default=float)})


def load_checkpoint(path: str, ctx: "TrainState") -> None:
    try:
        header, tensors = read_tensors(path)
        meta = json.loads(header["recae_checkpoint"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path!r} is not a readable recae checkpoint: {exc}") from None
    if meta["params"] != ctx.params_fingerprint:
        raise TrainingError(f"checkpoint {path!r} was written with other hyper-parameters or data; "
                            "resume with the same model settings or remove the checkpoint")
    dev = ctx.device
    ctx.module.load_state_dict({k[7:]: v.to(dev) for k, v in tensors.items() if k.startswith("module.")})
    best = {k[5:]: v.to(dev) for k, v in tensors.items() if k.startswith("best.")}
    ctx.best_state = best or None
    ctx.generator.set_state(tensors["rng"])
    if ctx.average is not None:
        if "average.0" not in tensors:
            raise TrainingError(f"checkpoint {path!r} holds no weight average; resume with the same model settings")
        for i, a in enumerate(ctx.average.avg):
            a.copy_(tensors[f"average.{i}"].to(dev))
        ctx.average.remaining = float(tensors["average.remaining"])
    for i, opt in enumerate(ctx.optimizers):
        _restore_optimizer(i, opt, tensors, meta)
    ctx.epoch, ctx.best_score, ctx.best_epoch = meta["epoch"], meta["best_score"], meta["best_epoch"]
    ctx.bad_epochs, ctx.history, ctx.step = meta["bad_epochs"], meta["history"], meta["step"]


class WeightAverage:
    """Exponential moving average of a module's parameters (Polyak–Ruppert averaging).

    After every optimizer step on a batch holding a share ``f`` of the training rows,
    ``avg ← avg + (1 − d^f)·(param − avg)``: one pass over the data multiplies the old
    average's weight by ``d`` (``decay``), whatever the batch size or data size, so the
    horizon is about ``1 / (1 − d)`` passes. The average starts at zero and is divided by
    ``1 − Π d^f`` (as Adam corrects its moments), so it averages the iterates only, never the
    initial weights. The training loop validates, keeps and returns the averaged weights
    while the optimizer goes on stepping the raw ones: on small data the average generalizes
    better than the last iterate.

    Parameters
    ----------
    module : torch.nn.Module
    decay : float in (0, 1)
        Weight of the old average after one pass over the training rows.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.params = [p for p in module.parameters()]
        self.avg = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in self.params]
        self.remaining = 1.0  # weight the zero start still has: Π d^f
        self.raw = None  # the iterate, kept aside while the module holds the average

    @torch.no_grad()
    def update(self, share: float) -> None:
        """Fold in the parameters after a step on ``share`` (rows in the batch / training rows)."""
        d = self.decay ** float(share)
        for a, p in zip(self.avg, self.params):
            a.lerp_(p.detach(), 1.0 - d)
        self.remaining *= d

    @torch.no_grad()
    def swap_in(self) -> None:
        """Put the (corrected) average into the module, keeping the iterate aside."""
        if self.remaining >= 1.0:
            return  # nothing averaged yet
        self.raw = [p.detach().clone() for p in self.params]
        for p, a in zip(self.params, self.avg):
            p.copy_(a / (1.0 - self.remaining))

    @torch.no_grad()
    def swap_out(self) -> None:
        """Give the module its iterate back (after :meth:`swap_in`)."""
        if self.raw is not None:
            for p, r in zip(self.params, self.raw):
                p.copy_(r)
            self.raw = None


class TrainState:
    """What an epoch needs and what a checkpoint holds.

    ``loader`` is anything with ``batches(batch_size, shuffle, generator)`` yielding row
    indices and ``gather(rows)`` returning the dense batch on the device (e.g. ``DeviceCSR``).
    ``higher_is_better`` orients the validation metric (False for errors such as RMSE).
    ``dist`` (a :class:`recae.distributed.DistContext`) makes the loop data-parallel.
    ``average`` (a :class:`WeightAverage`) makes validation, the kept state and the result
    use the averaged weights.
    """

    def __init__(self, module, optimizers, loader, generator, device, params_fingerprint, higher_is_better=True,
                 dist=None, average: WeightAverage | None = None):
        self.module = module
        self.optimizers = optimizers
        self.loader = loader
        self.generator = generator
        self.device = device
        self.params_fingerprint = params_fingerprint
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer updates so far (for schedules such as KL annealing)
        self.higher_is_better = higher_is_better
        self.best_score = -math.inf if higher_is_better else math.inf
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


def run_batches(model, ctx: TrainState, optimizers, loss_fn) -> float:
    """One pass over shuffled batches of ``ctx.loader`` updating ``optimizers``; the mean loss.

    ``model`` supplies ``batch_size``, ``device_``, ``_amp_enabled()`` and ``_penalty(module)``;
    ``loss_fn(ctx, x, rows)`` returns the batch loss.
    """
    if ctx.dist is not None:
        return _run_batches_distributed(model, ctx, optimizers, loss_fn)
    total = torch.zeros((), device=model.device_)
    n = 0
    for rows in ctx.loader.batches(model.batch_size, shuffle=True, generator=ctx.generator):
        x = ctx.loader.gather(rows)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        with torch.autocast(model.device_.type, dtype=torch.bfloat16, enabled=model._amp_enabled()):
            loss = loss_fn(ctx, x, rows)
        (loss + model._penalty(ctx.module)).backward()
        for opt in optimizers:
            opt.step()
        ctx.step += 1
        if ctx.average is not None:
            ctx.average.update(len(rows) / ctx.loader.n_rows)
        total += loss.detach().float()
        n += 1
    return float(total) / max(n, 1)


def _weighted_step(model, ctx: TrainState, loss_fn, x, rows, weight: float):
    # runs inside DDP's forward so its reducer sees the whole graph (loss and penalty)
    with torch.autocast(model.device_.type, dtype=torch.bfloat16, enabled=model._amp_enabled()):
        loss = loss_fn(ctx, x, rows)
    return loss, loss * weight + model._penalty(ctx.module)


def _run_batches_distributed(model, ctx: TrainState, optimizers, loss_fn) -> float:
    """``run_batches`` across ranks: same global batches, each rank gathers only its part.

    Each rank's loss is weighted by ``world × its share`` of the batch (``model._batch_weight``:
    rows by default), so DDP's gradient average is the gradient of the global batch's loss.
    """
    d = ctx.dist
    total = torch.zeros((), dtype=torch.float64, device=model.device_)
    n = 0
    for rows in ctx.loader.batches(model.batch_size, shuffle=True, generator=ctx.generator):
        if d.local_data:  # rows are already this rank's own, equally many on every rank
            local, weight = rows, 1.0
        else:
            local, start = d.local_rows(rows)
            # the rank's share of what the batch loss is normalised by (rows, or ratings)
            whole = model._batch_weight(ctx, rows)
            weight = model._batch_weight(ctx, local) * d.world / whole if whole > 0 else 0.0
            if len(local) == 0:  # a last batch smaller than the world: join the all-reduce with a zero-weight row
                local, start, weight = rows[:1], 0, 0.0
            ctx.batch_slice = _slice(ctx.generator, len(rows), start)
        x = ctx.loader.gather(local)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        try:
            loss, weighted = d.ddp(_weighted_step, model, ctx, loss_fn, x, local, weight)
        finally:
            ctx.batch_slice = None
        weighted.backward()
        for opt in optimizers:
            opt.step()
        ctx.step += 1
        if ctx.average is not None:
            # rank-local shards differ in size; every rank steps ceil(largest / part) times a pass
            pass_rows = ctx.loader.largest if d.local_data else ctx.loader.n_rows
            ctx.average.update(len(rows) / pass_rows)
        total += loss.detach().double() * (weight / d.world)  # this rank's share of the global batch mean
        n += 1
    total, = d.all_reduce_sum([float(total)])
    return total / max(n, 1)


def _slice(generator, global_rows: int, start: int):
    from .distributed import BatchSlice

    return BatchSlice(generator, global_rows, start)


def _validate(model, ctx: TrainState, valid, metric: str, logs: dict, main: bool) -> None:
    """Score the module on ``valid`` (rank 0; broadcast), log it and keep the best state."""
    if valid is None:
        return
    ctx.module.eval()
    # rank 0 validates; every rank gets its score and so takes the same decisions
    score = model._validation_score(valid, metric) if main else None
    if ctx.dist is not None:
        score = ctx.dist.broadcast_float(score)
    logs[metric] = score
    if score > ctx.best_score if ctx.higher_is_better else score < ctx.best_score:
        ctx.best_score, ctx.best_epoch, ctx.bad_epochs = score, ctx.epoch, 0
        ctx.best_state = {k: v.detach().clone() for k, v in ctx.module.state_dict().items()}
    else:
        ctx.bad_epochs += 1


def run(model, ctx: TrainState, valid, *, epochs: int, patience: int | None, metric: str, show_progress: bool,
        callbacks=(), checkpoint_dir=None, resume: bool = False) -> None:
    """Train ``model`` for up to ``epochs`` epochs.

    ``model`` implements ``_train_epoch(ctx) -> mean loss`` and, when ``valid`` is given,
    ``_validation_score(valid, metric) -> float`` (oriented by ``ctx.higher_is_better``).
    With ``ctx.dist`` set, rank 0 alone validates and writes checkpoints; its score and its
    callbacks' stop request are broadcast, so every rank takes the same decisions. With
    ``ctx.average``, validation and the kept best state use the averaged weights; callbacks
    and checkpoints see the raw weights the optimizer steps (``ctx.average`` holds the average).
    """
    path = os.path.join(os.fspath(checkpoint_dir), CHECKPOINT) if checkpoint_dir is not None else None
    if path is not None:
        os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
        for stale in glob.glob(os.path.join(os.fspath(checkpoint_dir), ".recae-*.tmp")):
            os.remove(stale)  # left by a process killed while writing a checkpoint
        if resume and os.path.exists(path):
            load_checkpoint(path, ctx)
            logger.info("resuming from %s after epoch %d", path, ctx.epoch)
    d = ctx.dist
    main = d is None or d.is_main
    bar = tqdm(total=epochs, initial=ctx.epoch, desc=type(model).__name__, disable=not (show_progress and main),
               leave=False)
    try:
        while ctx.epoch < epochs and not (patience is not None and valid is not None and ctx.bad_epochs >= patience):
            t0 = time.perf_counter()
            ctx.module.train()
            loss = model._train_epoch(ctx)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"{type(model).__name__}: the training loss became {loss} in epoch {ctx.epoch + 1}; "
                    + (f"the last good checkpoint is kept at {path}; " if path else "")
                    + "try a lower lr or more weight decay")
            ctx.epoch += 1
            logs = {"epoch": ctx.epoch, "loss": loss}
            if ctx.average is not None:
                ctx.average.swap_in()  # validate and keep the averaged weights
            try:
                _validate(model, ctx, valid, metric, logs, main)
            finally:
                if ctx.average is not None:
                    ctx.average.swap_out()  # the optimizer goes on from the raw weights
            logs["seconds"] = time.perf_counter() - t0
            ctx.history.append(logs)
            if path is not None and main:
                save_checkpoint(path, ctx)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k not in ("epoch", "seconds")})
            logger.debug("epoch %s", logs)
            stop = any(cb(model, ctx.epoch, logs) for cb in callbacks)
            if d is not None:
                stop = bool(d.broadcast_float(float(stop)))  # rank 0's callbacks decide for all
            if stop:
                break
    finally:
        bar.close()
    if ctx.best_state is not None:
        ctx.module.load_state_dict(ctx.best_state)
    elif ctx.average is not None:
        ctx.average.swap_in()  # without validation the result is the final average
        ctx.average.raw = None
    ctx.module.eval()
