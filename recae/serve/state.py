"""One loaded model as a server holds it: the model, its file's metadata and its id lookups.

A :class:`ModelState` is never changed after it is built; a reload builds a new one and swaps
the reference, so a request that started on the old model finishes on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import numpy as np

from ..data.ids import plain
from ..exceptions import DataError, ModelFileError
from ..io import read_model_file
from ..models.base import MODEL_REGISTRY, Recommender

__all__ = ["ModelState", "load_model", "coerce_id"]

#: ASCII digits only (``\d`` takes "１" as 1), and no more than an int64 holds: a longer string is
#: no id of the model's, and past 4,300 digits ``int()`` itself refuses it.
_INT = re.compile(r"[+-]?[0-9]{1,20}")


def load_model(path, device: str | None = None) -> tuple[Recommender, dict]:
    """Load a recommender model file and its metadata; refuses anything else (never unpickles).

    Raises
    ------
    ModelFileError
        The file is missing, corrupt, not a recae file (a pickle, say), or holds a model that is
        not a recommender (an image model).
    """
    where = os.fspath(path)
    meta, tensors = read_model_file(path)
    cls = MODEL_REGISTRY.get(meta.get("class"))
    if cls is None:
        raise ModelFileError(f"{where!r} holds a {meta.get('class')!r}, which is not a recommender recae can "
                             f"serve; servable classes: {sorted(MODEL_REGISTRY)}")
    return cls.from_file(meta, tensors, device, where), meta


def coerce_id(value, ids: np.ndarray, what: str):
    """A raw id from JSON or a query string as the model's id type (Python int or str).

    Query strings carry every id as text, so ``"42"`` is the integer 42 for a model with integer ids.
    """
    if ids.dtype.kind in "iu":
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        raise DataError(f"{what} must be an integer (this model's {what}s are integers like "
                        f"{[plain(x) for x in ids[:3]]}); got {value!r}")
    if isinstance(value, str):
        if not value:
            raise DataError(f"{what} must be a non-empty string (this model's {what}s are strings like "
                            f"{list(ids[:3])}); got ''")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \\ud800 escape: no text, and no JSON answer could name it
            raise DataError(f"{what} must be valid Unicode text; got {value.encode('utf-8', 'backslashreplace')!r}") \
                from None
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(value)
    raise DataError(f"{what} must be a string (this model's {what}s are strings like {list(ids[:3])}); got {value!r}")


class ModelState:
    """A fitted recommender with what serving it needs.

    Parameters
    ----------
    model : fitted Recommender
    meta : dict
        The model file's metadata ({} for a model handed over in memory).
    path : str or None
        The file it came from.
    generation : int
        Counts reloads: 0 for the first model, then 1, 2, ...
    """

    def __init__(self, model: Recommender, meta: dict, path: str | None, generation: int):
        if not isinstance(model, Recommender):
            raise DataError(f"can serve a fitted recae recommender or the path of its model file; "
                            f"got {type(model).__name__}")
        if not model.is_fitted:
            raise DataError(f"this {type(model).__name__} is not fitted; fit it (or save and load a fitted one) first")
        self.model, self.meta, self.path, self.generation = model, dict(meta), path, int(generation)
        ids = model.user_ids_
        # recae keeps ids sorted: a binary search is far cheaper per request than a pandas lookup
        self._sorted_users = len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))
        self.popularity = model.item_counts()
        self._fingerprint = None

    def user_id(self, value):
        return coerce_id(value, self.model.user_ids_, "user id")

    def item_id(self, value):
        return coerce_id(value, self.model.item_ids_, "item id")

    def item_list(self, values, what: str = "item ids") -> list | None:
        """Raw item ids in the model's type, checked known (an UnknownIdError names the unknown ones)."""
        if values is None:
            return None
        out = [self.item_id(v) for v in values]
        if out:
            self.model.item_columns(out)
        return out

    def user_pos(self, user) -> int:
        """Row of a training user, or -1 for a user the model has not seen."""
        ids = self.model.user_ids_
        if not self._sorted_users:
            return int(self.model.user_rows([user], unknown="ignore")[0])
        try:
            pos = int(np.searchsorted(ids, user))
        except TypeError:  # a string asked of integer ids or the reverse: not a user
            return -1
        return pos if pos < len(ids) and ids[pos] == user else -1

    def fingerprint(self) -> str:
        """SHA-256 of the training matrix and its ids: equal fingerprints, same training data."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            X = self.model.user_items_
            for a in (X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(np.float32)):
                h.update(np.ascontiguousarray(a).tobytes())
            for ids in (self.model.user_ids_, self.model.item_ids_):
                h.update(json.dumps([plain(x) for x in ids]).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def info(self) -> dict:
        """What GET /model answers: class, parameters, sizes, fingerprint, file and quality figures."""
        model, meta = self.model, self.meta
        try:
            params = json.loads(json.dumps(model.export_params(), default=str))
        except (TypeError, ValueError):
            params = {k: repr(v) for k, v in model.get_params().items()}
        return {"class": type(model).__name__, "params": params, "n_users": int(model.user_items_.shape[0]),
                "n_items": int(model.n_items_), "n_interactions": int(model.user_items_.nnz),
                "training_fingerprint": self.fingerprint(),
                "explanations": "exact" if getattr(model, "additive_scores", False) else "leave-one-out",
                "file": {"path": self.path, "sha256": meta.get("sha256"), "recae_version": meta.get("recae_version"),
                         "format_version": meta.get("format_version")},
                "quality": getattr(model, "quality_", None) or meta.get("quality"), "generation": self.generation}


def check_successor(old: ModelState, new: ModelState, appended) -> int:
    """Refuse a reload that would break clients' ids; returns how many ``appended`` items ``new`` lacks.

    A model whose user or item ids are of the other type (integers / strings), or that shares no
    item with the served one, is another catalogue: a ModelFileError says so and the old model
    keeps serving. Appended items the new model lacks are left out of their users' histories.
    """
    for what, before, after in (("user", old.model.user_ids_, new.model.user_ids_),
                                ("item", old.model.item_ids_, new.model.item_ids_)):
        kinds = ["integers" if ids.dtype.kind in "iu" else "strings" for ids in (before, after)]
        if kinds[0] != kinds[1]:
            raise ModelFileError(f"{new.path}: its {what} ids are {kinds[1]}, the served model's are {kinds[0]}: "
                                 "clients' ids and the appended histories would no longer match; serve a model "
                                 "fitted on the same ids")
    appended = list(appended)
    kinds = ["ratings" if m.model.accepts_negative else "interactions of a model of positives" for m in (old, new)]
    if appended and kinds[0] != kinds[1]:  # a click journalled as 1.0 would read as a 1-star rating, or back
        raise ModelFileError(f"{new.path}: it reads {kinds[1]}, but this server has appended {kinds[0]} "
                             f"(for {len(appended)} item(s)) that it would misread; serve it with a new journal")
    if not np.isin(new.model.item_ids_, old.model.item_ids_).any():
        raise ModelFileError(f"{new.path}: shares no item id with the served model (its items are like "
                             f"{[plain(x) for x in new.model.item_ids_[:3]]}, the served model's like "
                             f"{[plain(x) for x in old.model.item_ids_[:3]]}): another catalogue")
    return len(appended) - int(np.isin(np.asarray(appended, dtype=new.model.item_ids_.dtype), new.model.item_ids_).sum()) \
        if appended else 0
