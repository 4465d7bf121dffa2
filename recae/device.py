"""Device selection shared by every model."""

from __future__ import annotations

import torch

from .exceptions import DataError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` picks the first CUDA device when one is available, else the CPU.
    """
    if spec is None or spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise DataError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {spec!r} ({exc})") from None
    if dev.type not in ("cpu", "cuda"):  # torch names more (mps, meta, xpu); recae runs on these two
        raise DataError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {spec!r}: recae runs on CPUs "
                        f"and CUDA GPUs, not on {dev.type!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device {spec!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DataError(f"device {spec!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    return dev
