"""Crash-safe training checkpoints and the weight average they carry.

A checkpoint holds the module, the best state so far, the generator, the optimizers (L-BFGS
curvature lists included), the weight average and the loop's counters, so that
``resume=True`` continues a killed run exactly. Writes are atomic (:mod:`recae.atomic`).
"""

from __future__ import annotations

import json

import torch
from safetensors import SafetensorError

from .atomic import atomic_save_tensors, read_tensors
from .io import check_seal, seal
from .exceptions import ModelFileError, TrainingError

CHECKPOINT = "checkpoint.safetensors"


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


def save_checkpoint(path: str, ctx) -> None:
    """Write ``ctx`` (a :class:`recae.train.TrainState`) so that ``resume=True`` continues it exactly."""
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
    meta = json.loads(json.dumps(meta, default=float))  # as it reads back, so its checksum matches then
    atomic_save_tensors(tensors, path, {"recae_checkpoint": json.dumps(seal(meta, tensors))})


def load_checkpoint(path: str, ctx) -> None:
    """Restore a :class:`recae.train.TrainState` from :func:`save_checkpoint`'s file."""
    try:
        header, tensors = read_tensors(path)
        meta = json.loads(header["recae_checkpoint"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path!r} is not a readable recae checkpoint: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path!r} is not a readable recae checkpoint: its header holds no metadata object")
    if "meta_sha256" in meta:  # checkpoints of recae before checksums have none
        check_seal(meta, tensors, path)
    if meta.get("params") != ctx.params_fingerprint:
        raise TrainingError(f"checkpoint {path!r} was written with other hyper-parameters or data (training or "
                            "validation); resume with the same settings and data, or remove the checkpoint")
    try:
        _restore(meta, tensors, ctx, path)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        if isinstance(exc, TrainingError):
            raise
        raise ModelFileError(f"{path!r} does not hold together as a checkpoint of this model ({type(exc).__name__}: "
                             f"{exc}); remove it to start afresh") from None


def _restore(meta: dict, tensors: dict, ctx, path: str) -> None:
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


