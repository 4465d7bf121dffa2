"""Model files: one safetensors file with the tensors and JSON metadata in its header.

Nothing is pickled: loading parses a JSON header and raw tensor bytes, and the class to
build is looked up by name among recae's own models. SHA-256 sums over the tensors and over
the metadata (which holds string ids and hyper-parameters) guard against corruption; writes
go to a temporary file that is renamed into place, so a crash mid-save leaves the previous
file intact. Id arrays come back with the dtype they were saved with.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import scipy.sparse as sp
import torch
from safetensors import SafetensorError

from .atomic import atomic_save_tensors, read_tensors
from .data.validate import as_path
from .exceptions import ModelFileError, RecaeError

FORMAT = "recae-model"
FORMAT_VERSION = 1


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _meta_checksum(meta: dict) -> str:
    """SHA-256 over the metadata (string ids and hyper-parameters live there, not in the tensors)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _ids_out(name: str, ids: np.ndarray, tensors: dict, meta: dict) -> None:
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


def _ids_in(name: str, tensors: dict, meta: dict) -> np.ndarray:
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
            out = out.astype(dtype)
    return out


def save_model(model, path) -> None:
    """Write a fitted model to ``path`` atomically (see the module docstring)."""
    from . import __version__

    path = as_path(path, "model file path", ModelFileError)
    tensors = {f"state.{k}": v.detach().cpu().contiguous() for k, v in model._get_state().items()}
    X = model.user_items_
    tensors["user_items.indptr"] = torch.as_tensor(X.indptr.astype(np.int64))
    tensors["user_items.indices"] = torch.as_tensor(X.indices.astype(np.int64))
    tensors["user_items.data"] = torch.as_tensor(X.data.astype(np.float32))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "recae_version": __version__,
            "class": type(model).__name__, "params": model._export_params(), "n_users": int(X.shape[0]),
            "n_items": int(X.shape[1])}
    _ids_out("user_ids", model.user_ids_, tensors, meta)
    _ids_out("item_ids", model.item_ids_, tensors, meta)
    meta["sha256"] = _checksum(tensors)
    try:
        meta["meta_sha256"] = _meta_checksum(meta)
        header = {"recae": json.dumps(meta)}
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"hyper-parameters of {type(model).__name__} are not JSON-serialisable: {exc}") from None
    atomic_save_tensors(tensors, path, header)


def read_model_file(path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Parse and verify a model file; returns ``(metadata, tensors)`` or raises ModelFileError."""
    path = as_path(path, "model file path", ModelFileError)
    if not os.path.isfile(path):
        raise ModelFileError(f"no model file at {path!r}")
    try:
        header, tensors = read_tensors(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path!r} is not a recae model file (not a readable safetensors file: {exc})") from None
    if "recae" not in header:
        raise ModelFileError(f"{path!r} is a safetensors file but not a recae model (no recae metadata)")
    try:
        meta = json.loads(header["recae"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path!r} has corrupt recae metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not a recae model (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path!r} has an invalid model format version {version!r} "
                             f"(this recae reads versions 1 to {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path!r} was written with model format {version}, newer than this recae reads "
                             f"({FORMAT_VERSION}); upgrade recae")
    if _checksum(tensors) != meta.get("sha256"):
        raise ModelFileError(f"{path!r} failed its checksum: the tensors do not match the recorded SHA-256 (corrupt file?)")
    if "meta_sha256" in meta:
        if _meta_checksum(meta) != meta["meta_sha256"]:
            raise ModelFileError(f"{path!r} failed its checksum: the metadata does not match the recorded SHA-256 "
                                 "(corrupt file?)")
    return meta, tensors


def load_model(path, device: str | None = None):
    """Rebuild a model saved by :func:`save_model`.

    Parameters
    ----------
    path : str or os.PathLike
    device : str, optional
        Overrides the saved ``device`` hyper-parameter (e.g. load a GPU-trained model on CPU).
    """
    from .models.base import MODEL_REGISTRY

    meta, tensors = read_model_file(path)
    cls = MODEL_REGISTRY.get(meta.get("class"))
    if cls is None:
        raise ModelFileError(f"{os.fspath(path)!r} holds an unknown model class {meta.get('class')!r}; "
                             f"known: {sorted(MODEL_REGISTRY)}")
    where = os.fspath(path)
    if not isinstance(meta.get("params"), dict):
        raise ModelFileError(f"{where!r} is an incomplete recae model file (no hyper-parameters recorded)")
    params = dict(meta["params"])
    defaults = {k: v for k, v in cls().get_params().items()}
    for k, v in params.items():
        if isinstance(v, list) and isinstance(defaults.get(k), tuple):
            params[k] = tuple(v)
    if device is not None and "device" in defaults:
        params["device"] = device
    unknown = set(params) - set(defaults)
    if unknown:
        raise ModelFileError(f"{where!r} has parameters {sorted(unknown)} that {cls.__name__} does not take")
    model = cls(**params)
    try:
        model.device_ = model._resolve_device()
    except RecaeError as exc:
        raise ModelFileError(f"{where!r} was saved for device {params.get('device')!r}, which is not usable here "
                             f"({exc}); pass device='cpu' to load it") from None
    try:
        model.user_ids_ = _ids_in("user_ids", tensors, meta)
        model.item_ids_ = _ids_in("item_ids", tensors, meta)
        n_users, model.n_items_ = int(meta["n_users"]), int(meta["n_items"])
        if model.user_ids_.shape != (n_users,) or model.item_ids_.shape != (model.n_items_,):
            raise ValueError(f"{len(model.user_ids_)} user ids and {len(model.item_ids_)} item ids for a "
                             f"{n_users}×{model.n_items_} model")
        model.user_items_ = sp.csr_matrix(
            (tensors["user_items.data"].numpy(), tensors["user_items.indices"].numpy(),
             tensors["user_items.indptr"].numpy()), shape=(n_users, model.n_items_))
        state = {k[len("state."):]: v.to(model.device_) for k, v in tensors.items() if k.startswith("state.")}
        model._set_state(state)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:  # RuntimeError: load_state_dict
        raise ModelFileError(f"{where!r} is an incomplete or inconsistent {cls.__name__} file "
                             f"({type(exc).__name__}: {exc})") from None
    return model
