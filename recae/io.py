"""Model files: one safetensors file with the tensors and JSON metadata in its header.

This module knows the file format only, never the models (they call it). Nothing is pickled:
loading parses a JSON header and raw tensor bytes, and the class to build is looked up by name
among recae's own models (:meth:`recae.models.params.Params.load`). SHA-256 sums over the tensors and over
the metadata (which holds string ids and hyper-parameters) guard against corruption; writes
go to a temporary file that is renamed into place, so a crash mid-save leaves the previous
file intact. Id arrays come back with the dtype they were saved with.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError

from .atomic import atomic_save_tensors, read_tensors
from .data.validate import as_path
from .exceptions import ModelFileError
from .version import __version__

FORMAT = "recae-model"
FORMAT_VERSION = 1
#: File kinds: (header key, format name, newest format version this recae reads).
KINDS = {"recommender": ("recae", FORMAT, FORMAT_VERSION), "image": ("recae_image", "recae-image-model", 1)}


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d too
    return h.hexdigest()


def _meta_checksum(meta: dict) -> str:
    """SHA-256 over the metadata (string ids and hyper-parameters live there, not in the tensors)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def ids_out(name: str, ids: np.ndarray, tensors: dict, meta: dict) -> None:
    """Store an id array: integers as an int64 tensor, strings as a JSON list; the dtype is recorded."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iub":
        tensors[name] = torch.as_tensor(ids.astype(np.int64))
    elif ids.dtype.kind == "U":
        meta[name] = [str(x) for x in ids.tolist()]
    elif ids.dtype == object:
        values = [x.item() if isinstance(x, np.generic) else x for x in ids]
        if not (all(isinstance(x, str) for x in values)
                or all(isinstance(x, int) and not isinstance(x, bool) for x in values)):
            kinds = sorted({type(x).__name__ for x in values})
            raise ModelFileError(f"{name.replace('_', ' ')} must be all integers or all strings to be saved; "
                                 f"got values of types {kinds}")
        meta[name] = values
    else:
        raise ModelFileError(f"{name.replace('_', ' ')} have dtype {ids.dtype}; only integer or string ids can be saved")
    meta[f"{name}_dtype"] = ids.dtype.str


def ids_in(name: str, tensors: dict, meta: dict) -> np.ndarray:
    dtype = meta.get(f"{name}_dtype")
    if name in meta:
        out = np.empty(len(meta[name]), dtype=object)
        out[:] = meta[name]
    else:
        out = tensors[name].numpy()
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in "iubUO":
            raise ValueError(f"{name} has an unsupported dtype {dtype}")
        if dtype != out.dtype:
            try:
                converted = out.astype(dtype)
                lossless = np.array_equal(converted.astype(out.dtype), out)
            except (OverflowError, ValueError, TypeError):
                lossless = False
            if not lossless:  # e.g. ids 40000 and up under int16 would wrap to other ids
                raise ValueError(f"{name} do not fit their recorded dtype {dtype}")
            out = converted
    repeated = pd.Index(out).duplicated()  # two rows or columns under one id (a hash pass, not a sort)
    if repeated.any():
        raise ValueError(f"{name} repeat an id ({int(repeated.sum())} repeated)")
    return out


def write_model_file(path, meta: dict, tensors: dict[str, torch.Tensor], *, kind: str = "recommender") -> None:
    """Write tensors and JSON metadata to ``path`` atomically, with checksums and the format stamp.

    Parameters
    ----------
    meta : dict
        JSON-ready metadata; must hold ``class`` and ``params``.
    kind : {"recommender", "image"}
    """
    path = as_path(path, "model file path", ModelFileError)
    header_key, fmt, version = KINDS[kind]
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"format": fmt, "format_version": version, "recae_version": __version__, **meta}
    try:
        # NumPy scalars (a setting from np.logspace, say) are numbers: written as JSON's
        header = {header_key: json.dumps(seal(json.loads(json.dumps(meta, default=_numpy_scalar)), tensors))}
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"hyper-parameters of {meta.get('class')} are not JSON-serialisable: {exc}") from None
    atomic_save_tensors(tensors, path, header)


def _numpy_scalar(value):
    if isinstance(value, np.generic) and np.ndim(value) == 0 and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def is_model_file(path) -> bool:
    """Whether ``path`` is a safetensors file carrying recae metadata (reads its header only)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= (1 << 27):  # safetensors headers are small; anything else is another file
                return False
            header = json.loads(f.read(size))
    except (OSError, ValueError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and any(k in meta for k, _, _ in KINDS.values())


def read_model_file(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Parse and verify any recae model file; returns ``(metadata, tensors)`` or raises ModelFileError."""
    path = as_path(path, "model file path", ModelFileError)
    if not os.path.isfile(path):
        raise ModelFileError(f"no model file at {path!r}")
    try:
        header, tensors = read_tensors(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path!r} is not a recae model file (not a readable safetensors file: {exc})") from None
    key = next((k for k, _, _ in KINDS.values() if k in header), None)
    if key is None:
        raise ModelFileError(f"{path!r} is a safetensors file but not a recae model (no recae metadata)")
    fmt, newest = next((f, v) for k, f, v in KINDS.values() if k == key)
    try:
        meta = json.loads(header[key])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path!r} has corrupt recae metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ModelFileError(f"{path!r} is not a recae model (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path!r} has an invalid model format version {version!r} "
                             f"(this recae reads versions 1 to {newest})")
    if version > newest:
        raise ModelFileError(f"{path!r} was written with model format {version}, newer than this recae reads "
                             f"({newest}); upgrade recae")
    if _checksum(tensors) != meta.get("sha256"):
        raise ModelFileError(f"{path!r} failed its checksum: the tensors do not match the recorded SHA-256 (corrupt file?)")
    if ("meta_sha256" in meta or key != KINDS["recommender"][0]) and _meta_checksum(meta) != meta.get("meta_sha256"):
        raise ModelFileError(f"{path!r} failed its checksum: the metadata does not match the recorded SHA-256 "
                             "(corrupt file?)")
    if not isinstance(meta.get("params"), dict):
        raise ModelFileError(f"{path!r} is an incomplete recae model file (no hyper-parameters recorded)")
    return meta, tensors


def seal(meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """``meta`` with the SHA-256 of ``tensors`` and of itself, which :func:`check_seal` verifies."""
    meta = {**meta, "sha256": _checksum(tensors)}
    meta["meta_sha256"] = _meta_checksum(meta)
    return meta


def check_seal(meta: dict, tensors: dict[str, torch.Tensor], where: str) -> None:
    """A ModelFileError when ``meta`` and ``tensors`` no longer match the checksums :func:`seal` wrote."""
    if meta.get("meta_sha256") != _meta_checksum(meta) or meta.get("sha256") != _checksum(tensors):
        raise ModelFileError(f"{where!r} fails its SHA-256 check (damaged or edited after it was written); "
                             "remove it to start afresh")
