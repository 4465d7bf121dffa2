"""Hyper-parameters that mean the same in every model that has them, checked in one place.

Each model checks its own special settings in ``fit``; the shared names (sizes, rates,
penalties, dropout, seeds, switches) are checked here by name, so a ``hidden_dims=(16.5,)``
or ``dropout=1.0`` gets a DataError naming the setting instead of a torch error from deep in
the first epoch or a diverged loss.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ..data.validate import check_int, check_real
from ..exceptions import DataError


def _positive_int(name, value):
    check_int(value, name, minimum=1)


def _non_negative(name, value):
    check_real(value, name, low=0.0)


def _positive(name, value):
    check_real(value, name, low=0.0, low_open=True)


def _fraction(name, value):  # a rate that must leave something: 1.0 drops every input
    check_real(value, name, low=0.0, high=1.0, high_open=True)


def _seed(name, value):
    if value is not None:  # an int, as a model file can store it (a SeedSequence cannot be saved)
        check_int(value, name, minimum=0)


def _sizes(name, value):
    if (not isinstance(value, (tuple, list)) or not value
            or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, Integral) or v < 1 for v in value)):
        raise DataError(f"{name} must be a non-empty sequence of positive integers (layer widths), e.g. (600,); "
                        f"got {value!r}")


def _flag(name, value, choices=(True, False)):
    if not any(value is c or (isinstance(c, str) and value == c) for c in choices):
        raise DataError(f"{name} must be one of {list(choices)}; got {value!r}")


def _weights(name, value):
    if (not isinstance(value, (tuple, list)) or not value
            or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, Real) or not np.isfinite(v) or v < 0
                   for v in value) or not sum(value) > 0):
        raise DataError(f"{name} must be a sequence of finite non-negative weights with a positive sum; got {value!r}")


def _count_or_none(name, value):  # None, a count, or (where a model takes one) a fraction
    if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, Real)
                              or not np.isfinite(value) or value <= 0):
        raise DataError(f"{name} must be None or a positive finite number; got {value!r}")


#: Setting name -> its check, for every model that has a setting of that name.
CHECKS = {
    "hidden_dims": _sizes, "latent_dim": _positive_int, "hidden_dim": _positive_int, "hidden": _positive_int,
    "factors": _positive_int, "iterations": _positive_int, "n_enc_epochs": _positive_int,
    "n_dec_epochs": _positive_int, "anneal_steps": _positive_int, "fold_in_steps": _positive_int,
    "weight_decay": _non_negative, "l1": _non_negative, "beta_cap": _non_negative, "user_l2": _non_negative,
    "gamma": _non_negative, "regularization": _non_negative, "alpha": _positive,
    "learning_rate": _positive, "fold_in_lr": _positive, "init_std": _positive, "memory_budget_gb": _positive,
    "dropout": _fraction, "random_state": _seed, "mixture_weights": _weights,
    "num_threads": lambda name, value: check_int(value, name, minimum=0),
    "amp": lambda name, value: _flag(name, value, (True, False, "auto")),
    "show_progress": lambda name, value: _flag(name, value, (None, True, False)),
    "sampled_softmax": _count_or_none, "negatives": _count_or_none,
}


def check_settings(model) -> None:
    """Check every shared setting ``model`` has (see :data:`CHECKS`); a DataError names the first bad one.

    A model that gives one of these names another meaning lists it in ``own_checks`` and checks it itself.
    """
    own = getattr(model, "own_checks", ())
    for name, value in model.get_params().items():
        if name in CHECKS and name not in own:
            CHECKS[name](name, value)
