"""Data-parallel training of the neural models on ``torch.distributed`` (launched by ``torchrun``).

recae does not run processes itself: ``torchrun`` (or any launcher that sets ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) starts one process per GPU (or
per CPU worker), and the unchanged ``model.fit(data, valid=...)`` then trains with
``torch.nn.parallel.DistributedDataParallel`` (Li et al., "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training", VLDB 2020): gradients are all-reduced (NCCL on CUDA,
gloo on the CPU), every rank holds the same weights after every step.

How a global batch is split. Every rank draws the same seeded permutation of the users, so
the global batches are the ones a single process would draw; rank ``r`` takes the ``r``-th
contiguous part of each global batch (sizes differ by at most one) and gathers, densifies and
moves to its device only those rows. Each rank's loss is its part's mean, weighted by
``n_local · world / n_global`` so DDP's average of the gradients equals the gradient of the
global batch's mean. Random noise (dropout masks, the VAE's ε) is drawn for the whole global
batch and sliced (:class:`BatchSlice`), so every rank's generator stays in step with a
one-process run and the result matches it up to floating-point summation order.

For logs bigger than one host's memory each rank can instead be given only its own users
(:func:`read_parquet_shard` reads one rank's Parquet row groups) and fit with
``fit(shard, local_rows=True)``: each rank then draws ``batch_size / world`` rows per step from
its own shard with its own seed, so the run no longer replays a single process's batches.

Rank 0 alone computes the validation metric and writes checkpoints and saved models; the
metric and the stop decision are broadcast so every rank stops at the same epoch.

Launch, one node with 4 GPUs::

    torchrun --standalone --nproc_per_node=4 train.py

Two nodes with 8 GPUs each (run on both, ``--node_rank`` 0 and 1)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --rdzv_backend=c10d \\
             --rdzv_endpoint=host0:29500 train.py

CPU only (gloo)::

    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 train.py
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .data.interactions import Interactions
from .exceptions import DataError, TrainingError

logger = logging.getLogger(__name__)

__all__ = ["init", "is_distributed", "rank", "world_size", "is_main_process", "read_parquet_shard", "DistContext",
           "BatchSlice", "LocalShardLoader"]


def _dist():
    return dist


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return _dist().get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 when not distributed)."""
    return _dist().get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 and in a single process: the rank that validates, checkpoints and saves."""
    return rank() == 0


def rank0_value(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank (``value`` itself in a single process): a seed drawn from
    OS entropy must be one seed for the job, or the ranks draw different global batches.
    ``device``: this rank's device (NCCL broadcasts there; gloo on the CPU)."""
    if not is_distributed():
        return value
    on = device if _dist().get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([int(value)], dtype=torch.int64, device=on)
    _dist().broadcast(t, src=0)
    return int(t.item())


def launched_by_torchrun() -> bool:
    """Whether the environment describes a multi-process job (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Initialise the default process group from torchrun's environment variables.

    Parameters
    ----------
    backend : {"nccl", "gloo"}, optional
        Default: NCCL when CUDA is available, gloo otherwise.
    timeout_s : float, default 1800
        Collective timeout.

    Returns
    -------
    bool
        True when a multi-rank group is (now) initialised; False for a single process
        (``WORLD_SIZE`` unset or 1), where nothing is done.
    """

    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if not launched_by_torchrun():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    # the group recae joined is left by recae: torch asks scripts to destroy it, and one left to
    # the interpreter's teardown can abort a gloo rank ("terminate called without an active exception")
    atexit.register(_leave)
    logger.info("process group: backend %s, rank %d of %d", backend, dist.get_rank(), dist.get_world_size())
    return dist.get_world_size() > 1


#: Work handles freed only at interpreter teardown, by the main thread (see :func:`_leave`).
_HELD: list = []


def _leave() -> None:
    dist = _dist()
    if dist.is_available() and dist.is_initialized():
        # every rank reaches here before any tears its group down: a gloo rank whose peer has
        # already closed the connection can abort while destroying ("terminate called ...")
        with contextlib.suppress(RuntimeError):  # a peer that crashed: nothing left to wait for
            work = dist.barrier(async_op=True)
            work.wait()
            # the barrier's work keeps a tensor Python has seen, and releasing that takes the GIL: were
            # a gloo worker thread the last to drop the work, during the interpreter's teardown, it would
            # be ended inside the destructor and the rank abort ("terminate called without an active
            # exception"). Holding the handle leaves the last release to this thread, at teardown.
            _HELD.append(work)
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` for CUDA, ``device`` otherwise."""
    if device.type == "cuda" and is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    return device


@dataclass
class BatchSlice:
    """Noise source for rows ``start:start + n`` of a global batch of ``global_rows`` rows.

    Draws noise shaped like the whole global batch from ``generator`` and returns this rank's
    rows, so every rank consumes the generator exactly as a single process would.
    """

    generator: torch.Generator
    global_rows: int
    start: int

    def _slice(self, full: torch.Tensor, n: int) -> torch.Tensor:
        return full[self.start:self.start + n]

    def rand(self, shape, device) -> torch.Tensor:
        full = torch.rand((self.global_rows, *shape[1:]), generator=self.generator, device=device)
        return self._slice(full, shape[0])

    def randn(self, shape, device) -> torch.Tensor:
        full = torch.randn((self.global_rows, *shape[1:]), generator=self.generator, device=device)
        return self._slice(full, shape[0])


def rand(shape, source, device) -> torch.Tensor:
    """Uniform noise of ``shape`` from a ``torch.Generator`` or a :class:`BatchSlice`."""
    if isinstance(source, BatchSlice):
        return source.rand(shape, device)
    return torch.rand(shape, generator=source, device=device)


def randn(shape, source, device) -> torch.Tensor:
    """Standard normal noise of ``shape`` from a ``torch.Generator`` or a :class:`BatchSlice`."""
    if isinstance(source, BatchSlice):
        return source.randn(shape, device)
    return torch.randn(shape, generator=source, device=device)


class _LossModule(torch.nn.Module):
    """Wraps a model's module so DDP sees one forward: the batch loss (and the penalty)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.inner = module

    def forward(self, fn, *args):
        return fn(*args)


class DistContext:
    """What the training loop needs to run one fit across ranks.

    Parameters
    ----------
    module : torch.nn.Module
        The model's module (identical on every rank: built from the same seed).
    device : torch.device
    find_unused_parameters : bool
        For models whose steps leave some parameters out of the graph (RecVAE's
        alternating encoder/decoder phases).
    """

    def __init__(self, module: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False):

        self.dist = _dist()
        self.rank = self.dist.get_rank()
        self.world = self.dist.get_world_size()
        self.device = device
        self.local_data = False  # True: each rank was given only its own rows (LocalShardLoader)
        ids = [device.index] if device.type == "cuda" else None
        # the models hold no buffers, so DDP's default buffer broadcast has nothing to send
        self.ddp = DistributedDataParallel(_LossModule(module), device_ids=ids,
                                           find_unused_parameters=find_unused_parameters)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _comm_device(self) -> torch.device:
        return self.device if self.dist.get_backend() == "nccl" else torch.device("cpu")

    def local_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, int]:
        """This rank's contiguous part of a global batch and where it starts."""
        n = len(rows)
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        size = base + (1 if self.rank < extra else 0)
        return rows[start:start + size], start

    def broadcast_float(self, value: float | None) -> float:
        """Rank 0's ``value`` on every rank."""
        t = torch.tensor([float("nan") if value is None else value], dtype=torch.float64, device=self._comm_device())
        self.dist.broadcast(t, src=0)
        return float(t.item())

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        self.dist.all_reduce(t)
        return t.tolist()

    def all_reduce_max(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return t.tolist()

    def check_same(self, fingerprint: str, what: str) -> None:
        """Raise on every rank when ranks disagree on ``fingerprint`` (e.g. got different data)."""

        mine = int(fingerprint[:15], 16)
        t = torch.tensor([mine, -mine], dtype=torch.int64, device=self._comm_device())
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        if int(t[0]) != mine or -int(t[1]) != mine:
            raise TrainingError(f"the ranks were given different {what}; every rank must call fit with the same "
                                "data and hyper-parameters (rank-local rows are chosen by recae)")


# ---------------------------------------------------------------------- rank-local data
def read_parquet_shard(path, item_ids, user: str = "user", item: str = "item", rating: str | None = None):
    """This rank's users of a Parquet log: row groups ``rank, rank + world, …`` only.

    For logs bigger than one host's memory: no rank reads the whole file. Write the file
    sorted by user with row-group boundaries on user boundaries (a user split across two
    row groups read by different ranks would become two partial users). Fit on the result
    with ``fit(shard, local_rows=True)``.

    Parameters
    ----------
    path : str or path-like
    item_ids : array-like of shape (n_items,)
        The global catalogue, the same on every rank (columns follow it; unknown items raise).
    user, item, rating : str
        Column names; without ``rating`` every row is a 1.

    Returns
    -------
    recae.Interactions of shape (n_local_users, n_items)
    """


    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the project's extras
        raise DataError("read_parquet_shard needs pyarrow (pip install pyarrow)") from exc
    pf = pq.ParquetFile(path)
    groups = list(range(rank(), pf.num_row_groups, world_size()))
    cols = [c for c in (user, item, rating) if c is not None]
    if not groups:
        raise DataError(f"{path!r} has {pf.num_row_groups} row group(s) for {world_size()} ranks; rank {rank()} has "
                        "none. Write the file with at least one row group per rank")
    df = pf.read_row_groups(groups, columns=cols).to_pandas()
    log = Interactions.from_pandas(df, user=user, item=item, rating=rating, duplicates="sum" if rating else "first")
    return log.align_items(np.asarray(item_ids))


class LocalShardLoader:
    """Batches of a rank's own rows (data already sharded by rank), the same number on every rank.

    Each rank draws ``ceil(batch_size / world)`` rows per step from a permutation of its rows;
    the epoch has as many steps as the largest shard needs, smaller shards wrapping around
    (a second permutation), so every rank joins every all-reduce with a full part.
    """

    def __init__(self, loader, ctx: DistContext):
        self.loader = loader
        self.shape = loader.shape
        (self.largest,) = [int(v) for v in ctx.all_reduce_max([loader.n_rows])]
        self.world = ctx.world

    @property
    def n_rows(self) -> int:
        return self.loader.n_rows

    def gather(self, rows, dtype=torch.float32):
        return self.loader.gather(rows, dtype)

    def batches(self, batch_size: int, *, shuffle: bool, generator=None):
        part = -(-batch_size // self.world)
        steps = -(-self.largest // part)
        need = steps * part
        dev = generator.device if generator is not None else "cpu"
        orders = []
        while sum(len(o) for o in orders) < need:
            orders.append(torch.randperm(self.n_rows, generator=generator, device=dev) if shuffle
                          else torch.arange(self.n_rows))
        order = torch.cat(orders)[:need]
        for start in range(0, need, part):
            yield order[start:start + part]
