"""scikit-learn's parameter contract, shared by every recae estimator (recommenders and the image model)."""

from __future__ import annotations

import copy
import inspect
import json
import os

import numpy as np

from ..device import resolve_device
from ..exceptions import DataError, ModelFileError, NotFittedError, RecaeError
from ..io import KINDS, read_model_file

#: Classes that ``recae.load`` may instantiate, by class name (never by import path). A class
#: joins it by being defined (``_abstract = True`` in a shared base's own body keeps it out).
LOADABLE: dict[str, type] = {}


def file_params(cls, meta: dict, device: str | None, where: str) -> dict:
    """The hyper-parameters a model file records, as ``cls.__init__`` takes them."""
    params = dict(meta["params"])
    defaults = cls().get_params()
    for k, v in params.items():  # JSON has no tuples
        if isinstance(v, list) and (isinstance(defaults.get(k), tuple) or k in cls.tuple_params):
            params[k] = tuple(v)
    if device is not None and "device" in defaults:
        params["device"] = device
    unknown = set(params) - set(defaults)
    if unknown:
        raise ModelFileError(f"{where!r} has parameters {sorted(unknown)} that {cls.__name__} does not take")
    return params


def file_device(model, where: str):
    """The device a loaded model runs on, or a ModelFileError that says to pass device='cpu'."""
    try:
        return resolve_device(getattr(model, "device", "cpu"))
    except RecaeError as exc:
        raise ModelFileError(f"{where!r} was saved for device {getattr(model, 'device', None)!r}, which is not "
                             f"usable here ({exc}); pass device='cpu' to load it") from None


def _json_value(value):
    """NumPy scalars as the numbers they are (np.int64(3) is 3, not "3"); anything else as text."""
    return value.item() if isinstance(value, np.generic) else str(value)


def store_params(model, values: dict) -> None:
    """Keep ``__init__``'s keyword arguments unchanged, as ``store_params(self, locals())``.

    scikit-learn's rule: ``__init__`` stores its arguments under their own names, with no logic
    and no checks (settings are checked in ``fit``), so ``get_params`` and ``clone`` read them back.
    """
    for name in model._param_names():
        setattr(model, name, values[name])


class Params:
    """``get_params``/``set_params``/``clone``/``repr`` read from the ``__init__`` signature.

    ``__init__`` only stores its keyword arguments; learned state ends in ``_``. Subclasses
    register themselves for :meth:`load` and implement ``save`` and ``from_file``.
    """

    #: Parameters whose JSON lists are tuples again on loading (besides those with tuple defaults).
    tuple_params: tuple[str, ...] = ()
    #: What a file of this class holds, in errors.
    model_kind = "model"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_abstract", False):
            LOADABLE[cls.__name__] = cls

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self, deep: bool = True) -> dict:
        """Hyper-parameters as a dict (the ``__init__`` keyword arguments)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set hyper-parameters; unknown names are rejected with the list of valid ones."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise DataError(f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: {valid}")
            setattr(self, name, value)
        return self

    def clone(self):
        """An unfitted copy with the same hyper-parameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ fitted state
    #: The attribute whose presence means "fitted".
    _fitted_attr = "item_ids_"
    #: How to fit one, for the not-fitted error.
    _fit_call = "fit(data)"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, self._fitted_attr)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call {self._fit_call} "
                                 "(or recae.load) first")

    def _forget(self) -> None:
        """Drop all learned state: a refit starts from scratch, a failed fit leaves nothing behind."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        self.__dict__.pop("_id_cache", None)
        for cache in ("_fitted_params", "_trained_items"):
            self.__dict__.pop(cache, None)

    #: Settings a fitted model takes through ``set_params`` and saves as they are: they change
    #: where or how it runs (or, for some models, how it scores), not what it learned.
    after_fit: tuple[str, ...] = ("device", "show_progress", "memory_budget_gb", "amp")

    def export_params(self) -> dict:
        """Hyper-parameters as JSON-ready values, for model files (nested models become specs)."""
        return self.get_params()

    def _note_fitted_params(self) -> None:
        """Record the settings the learned state matches: at fit and load, or when a caller relabels
        a fitted model with equivalent settings (the epochs a trial stopped at)."""
        self._fitted_params = json.dumps(self.export_params(), sort_keys=True, default=_json_value)

    def _fitted_settings(self) -> dict:
        """The settings the learned state was fitted with (as JSON values), else the current ones."""
        noted = getattr(self, "_fitted_params", None)
        return json.loads(noted) if noted else self.get_params()

    def _params_to_save(self) -> dict:
        """The settings a model file records; refuses those changed since fit.

        A setting changed through ``set_params`` after fit (a rank, an l2) describes weights that
        were never learned: saved, the file would not load, or would state the wrong setting.
        """
        params = self.export_params()
        fitted = json.loads(getattr(self, "_fitted_params", None) or "null")
        if fitted is not None:
            now = json.loads(json.dumps(params, sort_keys=True, default=_json_value))
            changed = [k for k in now if k in fitted and k not in self.after_fit and now[k] != fitted[k]]
            if changed:
                raise DataError(f"cannot save this {type(self).__name__}: "
                                + "; ".join(f"{k} was set to {now[k]!r} after fit, but its weights were fitted "
                                            f"with {k}={fitted[k]!r}" for k in changed)
                                + ". Set " + ("it" if len(changed) == 1 else "them") + " back with set_params, "
                                "or fit again, before saving")
        return params

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path, device: str | None = None):
        """Load a model written by ``save``; refuses files that are not recae models (or not this class).

        Parameters
        ----------
        path : str or os.PathLike
        device : str, optional
            Overrides the saved ``device`` hyper-parameter (e.g. load a GPU-trained model on CPU).
        """
        if device is not None:
            resolve_device(device)  # a device asked for that is not one is named as such, not as the file's
        meta, tensors = read_model_file(path)
        where = os.fspath(path)
        name = meta.get("class")
        found = LOADABLE.get(name) if isinstance(name, str) else None
        kind = next((k for k, (_, fmt, _) in KINDS.items() if fmt == meta.get("format")), "recommender")
        if found is None and kind != "recommender" and cls.model_kind == "recommender model":
            # a file of another kind, whose classes need not be imported to say so
            raise ModelFileError(f"{where!r} holds {_a(str(name))} ({kind} model), not a recommender model")
        if found is None:
            raise ModelFileError(f"{where!r} holds an unknown model class {meta.get('class')!r}; "
                                 f"known: {sorted(LOADABLE)}")
        if not issubclass(found, cls):
            concrete = cls.__name__ in LOADABLE  # EASE.load, not Recommender.load
            raise ModelFileError(f"{where!r} holds {_a(found.__name__)} ({found.model_kind}), not "
                                 + (f"{_a(cls.__name__)}; recae.load reads any model file" if concrete
                                    else f"a {cls.model_kind}"))
        return found.from_file(meta, tensors, device, where)


def _a(name: str) -> str:
    """``name`` with its article: "an EASE", "a MultDAE"."""
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


def load(path, device: str | None = None):
    """Load any recae model file: a recommender or an image model (never unpickles).

    Parameters
    ----------
    path : str or os.PathLike
    device : str, optional
        Overrides the saved ``device`` hyper-parameter (e.g. load a GPU-trained model on CPU).
    """
    return Params.load(path, device)
