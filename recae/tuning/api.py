"""``recae.tune``: the best model and setting for one's own data within a time or trial budget."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..bench.protocols import FIRST_SEED, check_validation, search_split
from ..bench.fitting import valid_ndcg
from ..bench.search import Search
from ..bench.storage import storage_url
from ..bench.spaces import BLEND, DEFAULT_MODELS, ONE_THREAD, SPACES, blend_members, check_grid, check_models
from ..evaluate import evaluate
from ..exceptions import DataError, DataWarning
from ..models import Blend

logger = logging.getLogger(__name__)

UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_budget(budget) -> tuple[float | None, int | None]:
    """``"20m"``, ``"90s"``, ``"1h30m"`` → (seconds, None); a positive int → (None, trials)."""
    if isinstance(budget, (int, np.integer)) and not isinstance(budget, bool):
        if budget < 1:
            raise DataError(f"a trial budget must be at least 1 trial; got {budget}")
        return None, int(budget)
    text = str(budget).strip().lower() if isinstance(budget, str) else None
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(sec|min|s|m|h)", text or "")
    if not text or not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(sec|min|s|m|h)", "", text).strip():
        raise DataError(f"budget must be a time such as '20m', '90s' or '1h30m', or a number of trials (int); "
                        f"got {budget!r}")
    seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if not math.isfinite(seconds):
        raise DataError(f"a time budget must be finite; got {budget!r}")
    if seconds <= 0:
        raise DataError(f"a time budget must be more than 0 s; got {budget!r}")
    return seconds, None


def _check_count(name: str, value, least: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise DataError(f"{name} must be an integer >= {least} ({what}); got {value!r}")


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    model : Recommender
        The chosen model, refitted as :func:`tune`'s ``refit`` says (``refit_on`` records it).
    name, params : str, dict
        The chosen model's name in :data:`~recae.bench.spaces.MODELS` and its setting.
    valid : float
        Its validation NDCG@100.
    test : dict
        Test NDCG@100 and truncated Recall@20 of the chosen trial's model (fitted on the
        split's training users) on the split's test part, which the search never looked at.
    leaderboard : list of dict
        Per model: best and default validation NDCG@100, trials (pruned among them), seconds,
        test NDCG@100 of its best setting.
    trials : list of dict
        Every trial in the order run: model, setting, state, validation NDCG@100, seconds, elapsed.
    info : dict
        Budget, protocol, split seed, data shape, models, the whole run's seconds.
    """

    model: object
    name: str
    params: dict
    valid: float
    test: dict = field(default_factory=dict)
    leaderboard: list = field(default_factory=list)
    trials: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def refit(self, data):
        """The chosen setting fitted again on ``data``, as ``tune(refit=True)`` does.

        Neural models (and a Blend's neural members) train for the epochs their best trial
        stopped at, since ``data`` leaves no validation users to stop on; a Blend keeps its
        weights. Only :attr:`name`, :attr:`params` and :attr:`leaderboard` are read, so a
        result rebuilt from a saved report's JSON refits the same way.

        Parameters
        ----------
        data : Interactions
            Binary positives, users × items.

        Returns
        -------
        Recommender
            Fitted on ``data``.
        """
        return self.estimator().fit(data)

    def estimator(self):
        """The chosen setting as an unfitted model that needs no validation data (what :meth:`refit` fits)."""
        rows = {r["model"]: r for r in self.leaderboard}
        if self.name == BLEND:
            members = self.params["members"]
            # a Blend of several settings per model names each one; an older one takes each model's best
            settings = self.params.get("settings") or [_refit_params(m, rows[m]) for m in members]
            specs = [(SPACES[m].cls_name, dict(p)) for m, p in zip(members, settings)]
            return Blend(members=specs, weights=list(map(float, self.params["weights"])))
        return SPACES[self.name].model_class()(**_refit_params(self.name, rows[self.name]))

    def save(self, path) -> None:
        """Save the chosen model (a recae model file; ``recae.load`` reads it)."""
        self.model.save(path)


def _test(model, split) -> dict:
    table = evaluate(model, split, k=(20, 100), metrics=("ndcg", "truncated_recall"))
    return {"ndcg@100": float(table.loc["ndcg@100", "mean"]), "ndcg@100_se": float(table.loc["ndcg@100", "se"]),
            "truncated_recall@20": float(table.loc["truncated_recall@20", "mean"])}


def _refit_params(name, row) -> dict:
    params = dict(row["params"])
    if SPACES[name].neural and row.get("best_epoch"):
        params["epochs"] = int(row["best_epoch"])  # no validation users left to stop on
    return params


def check_arguments(models, budget, *, spaces=None, random_state=0, max_epochs=None, patience=10, threads=None,
                    blend_trials=1, storage=None, study_name="recae-tune", refit=True, on_trial=None) -> tuple:
    """:func:`tune`'s arguments checked without the data: ``(seconds, n_trials, model names, grids)``.

    The command line calls it before reading the log, so a mistake is named at once.
    """
    seconds, n_trials = parse_budget(budget)
    _check_count("random_state", random_state, 0, "a seed")
    if max_epochs is not None:
        _check_count("max_epochs", max_epochs, 1, "a cap on the neural models' epochs")
    if patience is not None:
        _check_count("patience", patience, 1, "trials without improvement before a model leaves; None: never")
    if threads is not None:
        _check_count("threads", threads, 1, "torch threads during the search")
    if spaces is not None and not isinstance(spaces, dict):
        raise DataError(f"spaces must be a dict {{model: {{parameter: [values, ...]}}}}, e.g. "
                        f"{{'ease': {{'l2': [100, 3000]}}}}; got a {type(spaces).__name__}: {spaces!r}")
    models = [models] if isinstance(models, str) else models  # one name, not its letters
    if not isinstance(refit, (bool, np.bool_)) or not (on_trial is None or callable(on_trial)):  # "no" is truthy
        raise DataError(f"refit must be True or False, on_trial None or a function; got {refit!r}, {on_trial!r}")
    if isinstance(blend_trials, bool) or not isinstance(blend_trials, (int, np.integer)) or blend_trials < 1:
        raise DataError(f"blend_trials must be a positive number of settings per member; got {blend_trials!r}")
    names = check_models(models if models is not None else DEFAULT_MODELS)
    searched = [m for m in names if m != BLEND]
    grids = {str(m).lower(): check_grid(str(m).lower(), g) for m, g in (spaces or {}).items()}  # as models
    unused = sorted(set(grids) - set(searched))
    if unused:
        raise DataError(f"spaces given for {unused}, which are not among the models searched {searched}; "
                        "add them to models or drop their spaces")
    if not isinstance(study_name, str) or not study_name.strip() or "/" in study_name:
        raise DataError(f"study_name must be a non-empty name without '/' (the search adds '/<model>' to it for "
                        f"each model's study); got {study_name!r}")
    if storage is not None:
        storage_url(storage)  # a folder, a file of another kind or one that cannot be written: named now
    return seconds, n_trials, names, grids


def tune(data, models=None, budget="20m", *, protocol: str = "strong", random_state: int = 0, split=None,
         spaces: dict | None = None, storage=None, study_name: str = "recae-tune", refit: bool = True,
         max_epochs: int | None = None, threads: int | None = None, patience: int | None = 10,
         blend_trials: int = 1, on_trial=None) -> TuneResult:
    """Search models and their hyper-parameters on a validation split of ``data``; return the best, refitted.

    Every model runs its default setting first; then the time goes mostly to the leaders on
    validation (a model's share halves with each model ahead of it; with a trial budget the
    shares are equal), drawn by Optuna's TPE sampler over the model's space in
    :data:`recae.bench.spaces.SPACES`; neural trials are pruned per epoch against the median of
    their model's earlier trials. With ``"blend"`` among the
    models, the Blend of the best members is a candidate too, weighted on validation; with
    ``blend_trials`` > 1, so is a Blend in which a neural member averages up to that many of its
    best settings.

    Parameters
    ----------
    data : Interactions
        Binary positives, users × items.
    models : str or sequence of str, optional
        Names from :data:`recae.bench.spaces.MODELS`; default :data:`~recae.bench.spaces.DEFAULT_MODELS`.
    budget : str or int, default "20m"
        Wall-clock time of the search (``"20m"``, ``"90s"``, ``"1h"``) or a number of trials
        in all. The Blend's weight search and the refit come after it.
    protocol : {"strong", "holdout", "temporal"}
        How ``data`` is split (:func:`recae.bench.make_split`); validation picks, test reports.
    random_state : int, default 0
        Seeds the sampler; the split uses seed 98765 + ``random_state``.
    split : StrongSplit or HoldoutSplit, optional
        Search on this split instead (``data`` is then used only for the refit).
    spaces : dict, optional
        ``{model: {parameter: [values, ...]}}`` replacing those models' grids; the first trial
        is the model's default moved inside them (the nearer end of a numeric range, else the
        first value).
    storage : str or path, optional
        An SQLite file for the Optuna studies: a search with the same data and settings resumes
        from it, losing no finished trial; one of other data or settings is refused.
    refit : bool, default True
        Refit the chosen setting on all of ``data`` (every user, validation and test users
        included; neural models for the epochs their best trial stopped at; a Blend keeps its
        weights). False: keep the trial's model, fitted on the split's training users.
    max_epochs, threads, patience : optional
        Cap on neural epochs; torch's threads during the search; trials without improvement
        after which a model leaves the rotation.
    blend_trials : int, default 1
        With ``"blend"`` and a value > 1: a second Blend candidate in which a neural member
        averages up to this many of its model's best trials (the next best joins while the
        average's validation score rises); its refit fits each of them. 1: only the Blend of
        each member's best trial.
    on_trial : callable, optional
        ``on_trial(record, progress)`` after each trial (the CLI prints progress from it).

    Returns
    -------
    TuneResult

    Raises
    ------
    DataError
        For a budget that is not a time or a trial count, or too small for one trial; an
        unknown model; a search-space value of the wrong type; a storage file of another search.
    """
    seconds, n_trials, names, grids = check_arguments(models, budget, spaces=spaces, random_state=random_state,
                                                      max_epochs=max_epochs, patience=patience, threads=threads,
                                                      blend_trials=blend_trials, storage=storage,
                                                      study_name=study_name, refit=refit, on_trial=on_trial)
    searched = [m for m in names if m != BLEND]
    if n_trials is not None and n_trials < len(searched):
        warnings.warn(f"a budget of {n_trials} trials leaves {searched[n_trials:]} without a trial; give at least "
                      f"{len(searched)}", DataWarning, stacklevel=2)
    if getattr(data, "has_ratings", False):  # the CLI binarizes; here the values would weigh the positives
        warnings.warn("data holds ratings, which every model takes as weights of positives; tune expects binary "
                      "positives: data.binarize(3.5) keeps ratings of 4 and up", DataWarning, stacklevel=2)
    # a temporal split is by time: no seed moves it
    seed = "given" if split is not None else None if protocol == "temporal" else FIRST_SEED + int(random_state)
    split = split if split is not None else search_split(data, protocol, seed)
    check_validation(split)
    old_threads = torch.get_num_threads()
    with contextlib.ExitStack() as stack:
        if threads:
            torch.set_num_threads(int(threads))
            stack.callback(torch.set_num_threads, old_threads)
        search = Search(split, searched, seconds=seconds, n_trials=n_trials, grids=grids, random_state=random_state,
                        storage=storage, study_name=study_name, max_epochs=max_epochs, patience=patience,
                        blend=BLEND in names, keep=blend_trials if BLEND in names else 1, on_trial=on_trial,
                        within=grids, fixed={m: ONE_THREAD[m] for m in searched if m in ONE_THREAD})
        found = search.run()
        if seconds is not None and found.records and not any(r["elapsed"] <= seconds for r in found.records):
            first = found.records[0]
            raise DataError(f"budget {budget!r} is too small for one trial: the first ({first['model']} with its "
                            f"defaults) took {first['seconds']:.1f} s; give at least {max(2 * first['seconds'], 1):.0f}s, "
                            "or a trial count, or cheaper models first")
        if not found.best:
            raise DataError(f"no trial finished within budget {budget!r} (all were pruned or cut short); "
                            "give a larger budget")
        best = dict(found.best)
        blends = []
        members = blend_members({m: c.valid for m, c in best.items()}) if BLEND in names else []
        if len(members) >= 2:
            blends.append(_blend({m: [best[m]] for m in members}, split))
            averaged = {m: _averaged(found.kept.get(m, [best[m]]), split) for m in members}
            if any(len(c) > 1 for c in averaged.values()):  # its search starts from the first Blend's weights too
                blends.append(_blend(averaged, split, start=blends[0][0].weights_))
        not_run = _not_run(searched, best, names, members, found)
        for model_name, why in not_run.items():
            warnings.warn(f"{model_name} is not among the results: {why}", DataWarning, stacklevel=2)
        leaderboard = _leaderboard(found, best, split, blends)  # best first
        fitted = [r.pop("_model", None) for r in leaderboard]  # a Blend row's model, for the result only
        top = leaderboard[0]
        name = top["model"]
        result = TuneResult(model=fitted[0] or best[name].model, name=name, params=top["params"],
                            valid=top["valid_ndcg@100"], test=top["test"], leaderboard=leaderboard,
                            trials=found.records)
        refit_on = "the split's training users, not refitted (refit=False)"
        if refit:
            refit_on = f"all {data.n_users} users of the data"
            result.model = result.refit(data)
        else:  # the saved settings are those a refit would use (epochs, weights), not the search's caps
            result.model.set_params(**{k: v for k, v in result.estimator().get_params().items()
                                       if k in ("members", "weights", "epochs")})
            result.model._note_fitted_params()  # the same weights, labelled with what a refit would use
        model = result.model
    # the figures behind the choice travel in the model file (GET /model shows them)
    model.quality_ = {"valid_ndcg@100": float(top["valid_ndcg@100"]), **{f"test_{k}": v for k, v in top["test"].items()},
                      "source": f"recae tune ({budget}{' trials' if n_trials else ''}, {protocol} split"
                                f"{'' if seed is None else f' seed {seed}'}): {name} fitted on the split's "
                                "training users; validation picked it, test users scored it",
                      "fitted_on": refit_on}
    info = {"budget": str(budget), "budget_seconds": seconds, "n_trials": n_trials, "protocol": protocol,
            "split_seed": seed, "random_state": random_state, "models": names, "users": data.n_users,
            "items": data.n_items, "nnz": data.nnz, "search_seconds": found.seconds, "refit_on": refit_on,
            "storage": None if storage is None else str(storage), "threads": threads or torch.get_num_threads(),
            "max_epochs": max_epochs, "patience": patience, "blend_trials": blend_trials, "left": found.left,
            "not_run": not_run}
    result.info = info
    return result


def _not_run(searched, best, names, members, found) -> dict:
    """Model name → why the search has no result for it (a budget spent before its turn, or trials all stopped)."""
    out = {}
    for m in searched:
        if m not in best:
            tried = sum(r["model"] == m for r in found.records)
            out[m] = ("the budget was spent before its first trial" if not tried else
                      f"none of its {tried} trial(s) finished (pruned or cut short)")
    if BLEND in names and len(members) < 2:
        out[BLEND] = (f"it needs two members with a finished trial (one of edlae/ease/sparseease, linearae, the neural "
                      f"models); the search has {list(members) or 'none'}")
    return out


def _averaged(cands, split) -> list:
    """Of a model's kept trials (best first), those whose equal-weight average scores best on validation.

    The next best trial joins while the average's validation NDCG@100 rises, so a member is
    never worse on validation than its best trial alone.
    """
    chosen, score = [cands[0]], cands[0].valid
    for cand in cands[1:]:
        value = valid_ndcg(Blend.from_models([c.model for c in [*chosen, cand]]), split)  # equal weights
        if value > score:
            chosen, score = [*chosen, cand], value
    return chosen


def _blend(trials: dict, split, start=None) -> tuple:
    """(Blend, params) of ``{member: [Candidate, ...]}``: the trials of one member share its weight.

    ``start``: one weight per member, a further starting point of the weight search.
    """
    flat = [(m, c) for m, cands in trials.items() for c in cands]
    groups = [list(trials).index(m) for m, _ in flat]
    several = len(flat) > len(trials)
    blend = Blend.from_models([c.model for _, c in flat], valid=split, groups=groups if several else None,
                              start=start)
    params = {"members": [m for m, _ in flat], "weights": np.round(blend.weights_, 4 if several else 3).tolist()}
    if several:  # each member's own setting, with the epochs its trial stopped at (for the refit)
        params["settings"] = [_refit_params(m, {"params": c.params, "best_epoch": c.record.get("best_epoch")})
                              for m, c in flat]
    logger.info("blend of %s: valid ndcg@100 %.4f", params["members"], blend.valid_score_)
    return blend, params


def _leaderboard(found, best, split, blends) -> list[dict]:
    rows = []
    for name, cand in best.items():
        recs = [r for r in found.records if r["model"] == name]
        rows.append({"model": name, "valid_ndcg@100": cand.valid, "params": cand.params,
                     "default_valid_ndcg@100": recs[0]["valid_ndcg@100"] if recs else float("nan"),
                     "trials": len(recs), "pruned": sum(r["state"] == "pruned" for r in recs),
                     "seconds": sum(r["seconds"] for r in recs), "best_epoch": cand.record.get("best_epoch"),
                     "test": _test(cand.model, split)})
    for blend, params in blends:
        rows.append({"model": BLEND, "valid_ndcg@100": valid_ndcg(blend, split), "params": params,
                     "default_valid_ndcg@100": float("nan"), "trials": 1, "pruned": 0,
                     "seconds": sum(r["seconds"] for r in rows if r["model"] in params["members"]), "best_epoch": None,
                     "test": _test(blend, split), "_model": blend})
    return sorted(rows, key=lambda r: -r["valid_ndcg@100"])
