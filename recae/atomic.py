"""safetensors files: crash-safe writes (temporary file, flush, rename) and whole-file reads."""

from __future__ import annotations

import contextlib
import os
import tempfile

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .exceptions import ModelFileError, RecaeError


def read_tensors(path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """``(header metadata, tensors)`` of a safetensors file, on the CPU; parse errors propagate."""
    with safe_open(os.fspath(path), framework="pt", device="cpu") as f:
        return f.metadata() or {}, {k: aligned(f.get_tensor(k)) for k in f.keys()}


def aligned(t: torch.Tensor) -> torch.Tensor:
    """``t``, copied when it sits off a 64-byte boundary: matrix products there round differently
    (by ~1e-10), and a loaded model should score exactly as the one saved."""
    return t if t.data_ptr() % 64 == 0 else t.clone()


@contextlib.contextmanager
def _replacing(path, error: type, verb: str):
    """Yield a temporary file beside ``path``; when the block ends, flush it and rename it over ``path``.

    ``path`` then holds the old file or the whole new one, never a torn one. A missing folder, a
    ``path`` that is a directory, or a disk that refuses the write raises ``error`` ("cannot
    <verb> ..."); the temporary file is removed in every case.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise error(f"cannot {verb} {path!r}: it is a directory")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".recae-", suffix=".tmp", dir=directory)
        os.close(fd)
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the mode an ordinary open() would (or the old file's)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as its own error
        raise error(f"cannot {verb} {path!r}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    _fsync_dir(directory)


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path, metadata: dict[str, str]) -> None:
    """Write a safetensors file so that ``path`` holds either the old or the new file, never a torn one.

    Raises
    ------
    ModelFileError
        When the folder is missing, ``path`` is a directory, or the disk refuses the write;
        the temporary file is removed in every case.
    """
    with _replacing(path, ModelFileError, "save to") as tmp:
        save_file(tensors, tmp, metadata=metadata)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` so that ``path`` holds the old file or the whole new one, never a torn one.

    Raises
    ------
    RecaeError
        When the folder is missing, ``path`` is a directory, or the disk refuses the write.
    """
    with _replacing(path, RecaeError, "write") as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def _file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


