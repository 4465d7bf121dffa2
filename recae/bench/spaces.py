"""What `recae bench` and `recae tune` may tune: one search space per model, as data.

With an equal trial count (``recae bench --budget N``) every model, baselines included, gets
the same number of trials. Trial 0 is the model's default setting (recae's defaults are the
ones tuned on ML-1M; ALS's default is the reference setting 256 factors / regularization 50 /
alpha 5), and the remaining trials are distinct settings drawn at random from the model's
grid. A model whose grid is smaller than the budget gets its whole grid.

The Optuna searches (``recae tune``, ``recae bench --budget-seconds``) read the same grids
through :func:`distributions`: a numeric grid becomes the range it spans (log scale when it
spans a factor of ten or more), any other grid a categorical choice.
"""

from __future__ import annotations

from collections.abc import Iterable

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import DataError
from ..models import MODEL_REGISTRY
from ..models.blend import MEMBER_SETTINGS


@dataclass(frozen=True)
class Space:
    """A model factory and its grid: ``{parameter: [values, ...]}`` (values are JSON-ready)."""

    cls_name: str
    grid: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    neural: bool = False

    def model_class(self):
        return MODEL_REGISTRY[self.cls_name]

    def settings(self) -> list[dict]:
        names = sorted(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*(self.grid[n] for n in names))]


SPACES: dict[str, Space] = {
    "popularity": Space("Popularity"),
    "ease": Space("EASE", {"l2": [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]}),
    "edlae": Space("EASE", {"l2": [50.0, 150.0, 300.0, 500.0], "dropout": [0.25, 0.33, 0.5, 0.67]}, {"dropout": 0.33}),
    # a Blend member, with the setting chosen on the Blend's validation score; tuned alone it
    # would move to LinearAE's own default and add less to the Blend, so the bench fixes it
    "linearae": Space("LinearAE", {k: [v] for k, v in MEMBER_SETTINGS["LinearAE"].items()},
                      dict(MEMBER_SETTINGS["LinearAE"])),
    # the large-catalogue linear autoencoders: a sparse closed form and a factored one
    "sparseease": Space("SparseEASE", {"l2": [100.0, 200.0, 500.0, 1000.0], "density": [0.02, 0.05, 0.1]}),
    # popularity_exponent: 0 suits MovieLens, 0.1–0.3 long-tail logs (FactorEASE's docstring)
    "factorease": Space("FactorEASE", {"rank": [128, 256, 512], "lr": [3e-3, 1e-2], "batch_size": [256, 512],
                                       "popularity_exponent": [0.0, 0.1, 0.2, 0.3]}, neural=True),
    # peers, like implicit: the published sparse and factored linear autoencoders (optional packages)
    "sansa": Space("SANSA", {"l2": [100.0, 200.0, 500.0, 1000.0], "density": [0.01, 0.02, 0.05]}),
    "elsa": Space("ELSA", {"rank": [128, 256, 512], "lr": [0.03, 0.1], "batch_size": [256, 512]}, neural=True),
    "als": Space("ImplicitALS", {"factors": [64, 128, 256, 512], "regularization": [1.0, 10.0, 50.0, 100.0, 200.0],
                                 "alpha": [1.0, 2.0, 5.0, 10.0, 20.0], "iterations": [15, 30]}),
    "bpr": Space("ImplicitBPR", {"factors": [64, 128, 256], "learning_rate": [0.01, 0.02, 0.05, 0.1],
                                 "regularization": [0.001, 0.01, 0.05], "iterations": [100, 200]}),
    "multdae": Space("MultDAE", {"dropout": [0.3, 0.5, 0.7], "weight_decay": [0.0, 1e-5, 1e-4],
                                 "lr": [5e-4, 1e-3, 3e-3]}, neural=True),
    # the defaults (lr 1e-3, batch 128, dropout 0.8) inside the ranges, not at a corner: per-epoch
    # pruning cuts every setting that learns slower per epoch than the default, so the search needs
    # room on the faster side too
    "multvae": Space("MultVAE", {"dropout": [0.5, 0.7, 0.8], "beta_cap": [0.1, 0.2, 0.4], "lr": [3e-4, 1e-3, 3e-3],
                                 "batch_size": [64, 128, 250, 500], "weight_averaging": [0.8, 0.9, 0.95]}, neural=True),
    "cdae": Space("CDAE", {"dropout": [0.3, 0.5, 0.7], "user_l2": [1e-5, 1e-4, 1e-3], "lr": [5e-4, 1e-3, 3e-3]},
                  neural=True),
    "recvae": Space("RecVAE", {"dropout": [0.3, 0.5], "gamma": [0.0035, 0.005, 0.01], "lr": [5e-4, 1e-3]},
                    neural=True),
}
#: Fixed in every search trial: implicit's BPR (Hogwild SGD) repeats a fit only on one thread.
ONE_THREAD = {"bpr": {"num_threads": 1}}
#: The recae hybrid: a Blend of the tuned linear, low-rank linear and neural members, weighted on validation.
BLEND = "blend"
BLEND_MEMBERS = ("edlae", "ease", "sparseease", "linearae", "recvae", "multdae", "multvae", "cdae", "factorease")
MODELS = (*SPACES, BLEND)
DEFAULT_MODELS = ("popularity", "als", "bpr", "ease", "edlae", "linearae", "multdae", "multvae", "cdae", "recvae", BLEND)


def blend_members(valid: dict) -> list[str]:
    """The Blend's members among the models in ``valid`` (``{model: validation score}``).

    The best-scoring full-rank linear one, LinearAE and every neural one, in ``valid``'s order.
    """
    linear = [m for m in ("edlae", "ease", "sparseease") if m in valid]
    return ([max(linear, key=lambda m: valid[m])] if linear else []) + (["linearae"] if "linearae" in valid else []) \
        + [m for m in valid if SPACES[m].neural]


def check_models(models) -> list[str]:
    if isinstance(models, (str, bytes)) or not isinstance(models, Iterable):
        raise DataError(f"models must be a list of model names, e.g. ['ease', 'als']; got {models!r}")
    models = [str(m).strip().lower() for m in models]
    if not models:
        raise DataError(f"models must name at least one model; choose from {list(MODELS)}")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise DataError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    linear = [m for m in models if m in ("edlae", "ease", "sparseease")]  # the Blend takes the best one of these
    if BLEND in models and len(linear[:1] + [m for m in models if m in BLEND_MEMBERS and m not in linear]) < 2:
        raise DataError(f"'blend' combines two or more members: one of edlae/ease/sparseease, linearae, and neural "
                        f"models {[m for m in BLEND_MEMBERS if SPACES[m].neural]}; got {models}")
    return list(dict.fromkeys(models))


def start(name: str, grid: dict | None = None, within: bool = False) -> dict:
    """The first setting searched: the model's defaults for the grid's parameters, then ``fixed``.

    With ``within`` (a user's grid, which replaces the model's) a default outside the grid moves
    inside it: to the nearer end of a numeric grid's range, else to the grid's first value. The
    models' own grids keep their defaults, which widen the searched range where they lie outside.
    """
    space = SPACES[name]
    grid = space.grid if grid is None else grid
    params = {**space.model_class()().get_params(), **space.fixed}  # edlae's dropout is its default
    first = {k: params[k] for k in grid if k in params}
    for k, d in first.items() if within else ():
        values = list(grid[k])
        if all(_number(v) for v in values) and _number(d):
            first[k] = min(max(d, min(values)), max(values))
        elif d not in values:
            first[k] = values[0]
    first.update({k: v for k, v in space.fixed.items() if k not in first})
    return first


def _number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_grid(name: str, grid) -> dict:
    """``grid`` checked against the model's parameters: ``{parameter: [values, ...]}``.

    Raises
    ------
    DataError
        For an unknown model or parameter, a value that is not a non-empty list, or values
        whose type differs from the default's (numbers where the default is a number).
    """
    if name not in SPACES:
        raise DataError(f"unknown model {name!r} in the search spaces; choose from {list(SPACES)}")
    if not isinstance(grid, dict):
        raise DataError(f"the search space of {name!r} must be a dict {{parameter: [values, ...]}}; got {grid!r}")
    params = SPACES[name].model_class()().get_params()
    out = {}
    for key, values in grid.items():
        if key not in params:
            raise DataError(f"{SPACES[name].cls_name} has no parameter {key!r}; its parameters: {sorted(params)}")
        if key in ONE_THREAD.get(name, {}):  # Hogwild SGD on more threads would not repeat a trial
            raise DataError(f"{name}.{key} is fixed at {ONE_THREAD[name][key]} in every search trial, so a seed "
                            f"repeats its trials; leave it out of the search space")
        if isinstance(values, np.ndarray) and values.ndim == 1:
            values = values.tolist()
        if not isinstance(values, (list, tuple)) or not values:
            raise DataError(f"{name}.{key}: the search space value must be a non-empty list of values, "
                            f"e.g. [{params[key]!r}]; got {values!r}")
        default = params[key]
        integral = isinstance(default, (int, np.integer)) and not isinstance(default, (bool, np.bool_))
        for v in values:
            if _number(default) and not _number(v) or isinstance(default, str) and not isinstance(v, str):
                raise DataError(f"{name}.{key} takes values of the type of its default {default!r} "
                                f"({type(default).__name__}); got {v!r} ({type(v).__name__})")
            if _number(v) and not np.isfinite(float(v)):
                raise DataError(f"{name}.{key}: values must be finite numbers; got {v!r}")
            if integral and _number(v) and float(v) != int(v):
                raise DataError(f"{name}.{key} takes whole numbers (its default is {default!r}); got {v!r}")
        # whole numbers stay integers, so the search draws integers between them; a real-valued
        # setting's [1, 3] is the range from 1.0 to 3.0, as [1.0, 3.0] is
        real = isinstance(default, (float, np.floating))
        out[key] = [int(v) if integral and _number(v) else float(v) if real and _number(v) else v for v in values]
        for v in out[key]:  # the ends of a range, or each choice: refused now, not when a trial draws it
            try:
                SPACES[name].model_class()(**{**SPACES[name].fixed, key: v}).check_params()
            except DataError as exc:
                raise DataError(f"{name}.{key}: the search space value {v!r} is one {SPACES[name].cls_name} refuses "
                                f"({exc}); give values it accepts") from None
    return out


def distributions(name: str, grid: dict | None = None, within: bool = False) -> dict:
    """Optuna distributions of a grid (the first setting always inside them).

    Integer grids of three or more values (two for a user's grid, ``within``) become an
    ``IntDistribution`` over their range, real-valued ones a ``FloatDistribution`` (log scale
    when the positive range spans a factor of ten or more); grids with fewer values, a zero
    beside positive values on a log-like scale, or non-numbers become a ``CategoricalDistribution``.
    """
    # lazy: optuna is an optional dependency (the `tune` extra) and slow to import
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = SPACES[name]
    grid = space.grid if grid is None else check_grid(name, grid)
    first = start(name, grid, within)
    out = {}
    for key in sorted(grid):
        values = list(dict.fromkeys([*grid[key], first[key]] if key in first else grid[key]))
        lo, hi = (min(values), max(values)) if all(_number(v) for v in values) else (None, None)
        # a given grid's two numbers are the ends of a range; a model's own grid needs three
        if lo is None or len(values) < (2 if within else 3) \
                or lo <= 0 < hi and max(values) / min(v for v in values if v > 0) >= 10:
            out[key] = CategoricalDistribution(values)
        elif all(isinstance(v, (int, np.integer)) for v in values):
            out[key] = IntDistribution(int(lo), int(hi), log=lo > 0 and hi / lo >= 10)
        else:
            out[key] = FloatDistribution(float(lo), float(hi), log=lo > 0 and hi / lo >= 10)
    return out


def trials(name: str, budget: int, seed: int = 0) -> list[dict]:
    """The settings ``name`` is tried with: its defaults, then distinct random grid points.

    Returns
    -------
    list of dict
        ``budget`` settings (fewer when the grid is smaller); each holds the parameters that
        differ from the model's defaults (``{}`` is the default setting).
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise DataError(f"budget must be a positive integer (trials per model); got {budget!r}")
    space = SPACES[name]
    defaults = {k: v for k, v in space.model_class()().get_params().items() if k in space.grid}
    defaults.update(space.fixed)
    first = dict(space.fixed)
    others = [s for s in space.settings() if s != defaults]
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    picks = rng.permutation(len(others))[: budget - 1]
    return [first] + [others[i] for i in sorted(picks)]
