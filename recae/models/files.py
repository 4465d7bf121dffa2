"""A recommender's model file: weights (safetensors) and JSON metadata in one file, never a pickle.

The metadata holds the class, its hyper-parameters, the ids, the users a filter dropped and,
where the fit measured them, the quality figures (``quality_``) that ``GET /model`` shows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..exceptions import DataError, ModelFileError
from ..io import ids_in, ids_out, write_model_file
from .params import file_device, file_params
from .settings import check_settings

__all__ = ["RecommenderFile"]


class RecommenderFile:
    """``save`` / ``from_file`` of :class:`~recae.models.base.Recommender` (a mixin, not a model)."""

    def check_params(self) -> None:
        """Check the settings as ``fit`` would, as far as that needs no data.

        Raises
        ------
        DataError
            Naming the first setting ``fit`` would refuse and the value it has.
        """
        check_settings(self)
        if hasattr(self, "_check_settings"):
            self._check_settings()

    def save(self, path) -> None:
        """Write weights (safetensors) and JSON metadata to one file; never pickles."""
        self._check_fitted()
        X = self.user_items_
        tensors = {f"state.{k}": v for k, v in self.get_state().items()}
        tensors.update({"user_items.indptr": torch.as_tensor(X.indptr.astype(np.int64)),
                        "user_items.indices": torch.as_tensor(X.indices.astype(np.int64)),
                        "user_items.data": torch.as_tensor(X.data.astype(np.float32))})
        meta = {"class": type(self).__name__, "params": self._params_to_save(), "n_users": int(X.shape[0]),
                "n_items": int(X.shape[1]),
                "dropped_users": {step: [u.item() if isinstance(u, np.generic) else u for u in users]
                                  for step, users in getattr(self, "dropped_users_", {}).items()}}
        if getattr(self, "quality_", None):
            meta["quality"] = self.quality_
        if getattr(self, "history_", None) is not None:  # a trained model's epochs, for plots after loading
            meta["history"] = [{k: v.item() if isinstance(v, np.generic) else v for k, v in h.items()}
                               for h in self.history_]
            meta["best_epoch"] = int(self.best_epoch_)
        ids_out("user_ids", self.user_ids_, tensors, meta)
        ids_out("item_ids", self.item_ids_, tensors, meta)
        write_model_file(path, meta, tensors)

    def _probe(self) -> None:
        """Score one training user and one history: a state that does not fit the catalogue fails here.

        Checksums catch a damaged file, not one written inconsistent (a weight table one item short,
        a float64 table where float32 is computed); without this such a file loads and fails, or
        silently never ranks an item, at recommend time.
        """
        n_items = len(self.item_ids_)
        for scores in (self.score_users(np.zeros(min(1, len(self.user_ids_)), dtype=np.int64)),
                       self.score_rows(self.user_items_[:1])):
            shape = tuple(scores.shape)
            if shape[1:] != (n_items,):
                raise ValueError(f"its weights score {shape[-1]} items, but it has {n_items} item ids")
            if bool(torch.isnan(torch.as_tensor(scores)).any()):
                raise ValueError("its weights give NaN scores")

    @classmethod
    def from_file(cls, meta: dict, tensors: dict, device: str | None = None, where: str = ""):
        """Rebuild a model from a parsed model file (see :func:`recae.io.read_model_file`)."""
        model = cls(**file_params(cls, meta, device, where))
        try:  # settings a fit would refuse (a hand-edited file): refused here, not at the next refit
            model.check_params()
        except DataError as exc:
            raise ModelFileError(f"{where!r} records settings {cls.__name__} does not take: {exc}") from None
        model.device_ = file_device(model, where)
        try:
            user_ids, item_ids = ids_in("user_ids", tensors, meta), ids_in("item_ids", tensors, meta)
            n_users, n_items = int(meta["n_users"]), int(meta["n_items"])
            if user_ids.shape != (n_users,) or item_ids.shape != (n_items,):
                raise ValueError(f"{len(user_ids)} user ids and {len(item_ids)} item ids for a "
                                 f"{n_users}×{n_items} model")
            X = sp.csr_matrix((tensors["user_items.data"].numpy(), tensors["user_items.indices"].numpy(),
                               tensors["user_items.indptr"].numpy()), shape=(n_users, n_items))
            X.check_format(full_check=True)  # item indices inside the catalogue, rows in order
            model.adopt(X, user_ids, item_ids, device=model.device_)
            model.dropped_users_ = {str(k): list(v) for k, v in dict(meta.get("dropped_users", {})).items()}
            if isinstance(meta.get("quality"), dict):
                model.quality_ = dict(meta["quality"])
            if isinstance(meta.get("history"), list):
                model.history_, model.best_epoch_ = list(meta["history"]), int(meta["best_epoch"])
            model.set_state({k[len("state."):]: v.to(model.device_) for k, v in tensors.items()
                             if k.startswith("state.")})
            model._probe()
        except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:  # RuntimeError: load_state_dict
            raise ModelFileError(f"{where!r} is an incomplete or inconsistent {cls.__name__} file "
                                 f"({type(exc).__name__}: {exc})") from None
        return model
