"""The Optuna search behind `recae tune` and `recae bench --budget-seconds`: one study per model.

Each model has its own study (TPE sampling over :func:`~recae.bench.spaces.distributions`,
median pruning), so pruning compares a trial only with earlier trials of the same model. The
first trial of every model is its default setting. Models take turns: the next trial goes to
the model that has used the least (time, or trials with a trial budget). In the first round a
default trial shares the time left with the models still waiting for theirs, so a slow model's
default can use what the fast ones did not, up to half of it. After it, a shared time budget is
split by standing (successive halving across models, ``lead``): each model's share of the time
is ``lead`` to the power of the number of models ahead of it on validation, so the leader gets
twice the runner-up's time, four times the third's, and a model that overtakes another takes
its share. A model leaves the rotation when its space is exhausted or ``patience`` trials in a
row did not improve it, or (with a shared budget) when its best full trial is clearly behind
the leader (``race``), and its share goes to the others. When the Blend is a candidate
(``blend=True``), its members stand as one: each is ranked where the group's best member is, so
the members a Blend needs are tuned even when none leads alone, and the race does not drop them.

Neural models report validation NDCG@100 after every epoch through the trainer's
``callbacks`` fit option: a trial worse than the median of its model's earlier trials at the
same epoch is pruned, and a trial that reaches its time share stops there and keeps its best
epoch (state ``"stopped"``: a candidate for the result, a pruned trial for the sampler).
Closed-form and implicit trials cannot stop part-way: one may overrun its share by one fit,
and such a model leaves the rotation once even its fastest fit so far exceeds the time left to it.
A neural model leaves likewise once the time left to it is under ``MIN_EPOCHS`` epochs at its
fastest pace: such a trial would be scored on a barely trained model.

Reproducibility: the sampler is reseeded before each trial from ``random_state``, the model and
the number of its finished trials, and every fit has a fixed ``random_state``, so with a trial
budget a seed gives the same trials on the same machine. With a time budget each model draws
the same sequence of settings as long as its trials score the same, but how many run, their
order across models and where a neural trial is cut short depend on the machine's speed and load.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import DataError, DataWarning
from .fitting import fit_model, quiet_search, valid_ndcg
from .spaces import SPACES, blend_members, distributions, start
from .storage import open_studies

logger = logging.getLogger(__name__)

METRIC = "ndcg@100"
#: A neural trial with time for fewer epochs is not started: none that the committed searches cut
#: short before epoch 5, after a full trial of their model, was its model's best (cut_short_trials.md).
MIN_EPOCHS = 5


@dataclass
class Candidate:
    """A model's best finished trial: its validation score, setting, record and fitted model."""

    valid: float
    params: dict
    record: dict
    model: object = None


@dataclass
class SearchResult:
    """``records``: every finished trial in the order run (resumed ones first); ``best``: model name → Candidate.

    ``kept``: model name → its best usable trials, best first (up to the search's ``keep`` for
    neural models, the best alone for the others); ``kept[m][0]`` is ``best[m]``.
    """

    records: list = field(default_factory=list)
    best: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    seconds: float = 0.0
    left: dict = field(default_factory=dict)  # model → why it left the rotation before the budget was spent


class Search:
    """Search the models' spaces on ``split`` (see the module docstring).

    Parameters
    ----------
    split : StrongSplit or HoldoutSplit
        Trials fit on ``split.train`` and are scored on its validation part.
    models : list of str
        Keys of :data:`~recae.bench.spaces.SPACES`.
    seconds : float, optional
        Time budget: the whole search's (``per_model=False``) or each model's (``per_model=True``).
    n_trials : int, optional
        Trial budget: in all (``per_model=False``) or per model.
    grids : dict, optional
        ``{model: {parameter: [values]}}`` replacing those models' grids.
    within : collection of str, optional
        Models whose ``grids`` are a user's space: the first setting moves inside it, no range widens (:func:`start`).
    storage : str or path, optional
        An Optuna SQLite file: finished trials are kept there and a new search with the same
        arguments resumes them (a trial cut short by a kill runs again).
    fixed : dict, optional
        ``{model: {parameter: value}}`` added to every trial's setting (not searched).
    race : float or None, default 0.9
        In a shared budget, a model whose best full (not cut short) trial scores under
        ``race`` × the leader's leaves the rotation (for good: a resumed search keeps it out).
    lead : float, default 0.5
        In a shared time budget, after every model's default: a model's share of the time is
        ``lead ** (models ahead of it on validation)``; 1.0 gives every model an equal share.
    blend : bool, default False
        The Blend of the best members (:func:`~recae.bench.spaces.blend_members`) is a candidate
        after the search: for the shares the members count as one model scoring as their best,
        and the race leaves them in.
    keep : int, default 1
        Each neural model's best usable trials that keep their models (``SearchResult.kept``), for a Blend.
    on_trial : callable, optional
        ``on_trial(record, progress)`` after each trial (``progress``: best, trials done, time left).
    """

    def __init__(self, split, models, *, seconds=None, n_trials=None, per_model=False, grids=None,
                 random_state=0, storage=None, study_name="recae", max_epochs=None, patience=10,
                 startup_trials=4, fixed=None, race=0.9, lead=0.5, blend=False, keep=1, on_trial=None,
                 within=()):
        if (seconds is None) == (n_trials is None):
            raise DataError("give a time budget (seconds) or a trial budget (n_trials), not both or neither")
        if isinstance(lead, bool) or not isinstance(lead, (int, float)) or not 0 < lead <= 1:
            raise DataError(f"lead must be a number in (0, 1] (1: equal shares); got {lead!r}")
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 1:
            raise DataError(f"keep must be a positive number of trials per model; got {keep!r}")
        self.keep = int(keep)
        self.split, self.models, self.per_model = split, list(models), per_model
        self.seconds, self.n_trials, self.on_trial = seconds, n_trials, on_trial
        self.random_state, self.max_epochs, self.patience = int(random_state), max_epochs, patience
        self.startup_trials, self.race, self.lead, self.blend = startup_trials, race, float(lead), bool(blend)
        self.fixed = {m: dict((fixed or {}).get(m, {})) for m in self.models}  # e.g. one thread for implicit
        self.grids = {m: (grids or {}).get(m, SPACES[m].grid) for m in self.models}
        within = set(within)
        self.dists = {m: distributions(m, self.grids[m], m in within) for m in self.models}
        self.first = {m: start(m, self.grids[m], m in within) for m in self.models}
        settings = {"random_state": self.random_state, "max_epochs": max_epochs, "per_model": per_model,
                    "fixed": self.fixed}
        with quiet_search():
            self.studies = open_studies(storage, study_name, self.models, split, self.grids, settings, self.first)

    # ------------------------------------------------------------------ bookkeeping
    def _finished(self, name):
        from optuna.trial import TrialState

        return self.studies[name].get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))

    def _exhausted(self, name, records) -> str:
        """Why ``name`` has nothing left to try ('' while it has)."""
        sizes = [len(d.choices) if hasattr(d, "choices") else (d.high - d.low) // d.step + 1 if isinstance(d.low, int)
                 else math.inf for d in self.dists[name].values()]  # an IntDistribution holds a countable range
        if records and math.prod(sizes) <= len({str(sorted(r["params"].items())) for r in records}):
            return f"all {math.prod(sizes)} settings of its space are tried"
        scores = [r["valid_ndcg@100"] for r in records if r["state"] != "pruned"]
        if self.patience is None or len(scores) <= self.patience:
            return ""
        stale = max(scores[-self.patience:]) <= max(scores[:-self.patience]) + 1e-4
        return f"{self.patience} trials in a row did not improve it" if stale else ""

    def run(self) -> SearchResult:
        """Run the trials until the budget is spent; the best fitted model of every model that ran."""
        with quiet_search():
            return self._run()

    def _run(self) -> SearchResult:
        result = SearchResult()
        old = sorted(((t.user_attrs.get("order", t.number), name, t) for name in self.models
                      for t in self._finished(name)), key=lambda x: x[0])
        for _, name, t in old:  # resumed from storage: their models are refitted at the end if best
            self._keep(result, name, dict(t.user_attrs["record"]), None)
        if self.n_trials is not None and not self.per_model and len(result.records) >= self.n_trials:
            warnings.warn(f"the storage already holds {len(result.records)} finished trials, at or over the budget "
                          f"of {self.n_trials}: no new trial runs; give a larger budget to search on", DataWarning)
        used = {m: sum(r["seconds"] for r in result.records if r["model"] == m) for m in self.models}
        done = {m: bool(self._exhausted(m, self._of(result, m))) for m in self.models}
        for m in self.models:  # a model the race dropped before a kill stays out, as it would have
            if self.studies[m].user_attrs.get("left") and not done[m]:
                done[m], result.left[m] = True, self.studies[m].user_attrs["left"]
        # a resumed search's clock carries on from its last finished trial (the trials' own seconds
        # leave out the time between them, which an uninterrupted search's clock counts)
        clock = max([sum(used.values()), *(r.get("elapsed", 0.0) for r in result.records)])
        t0 = time.perf_counter() - clock
        while True:
            active = [m for m in self.models if not done[m]]
            if self.per_model:
                active = active[:1]
            if not active or self._spent(result, used, t0):
                break
            waiting = [m for m in active if not self._of(result, m)]
            weight = self._shares(result, active, ranked=self.seconds is not None and not waiting)
            name = min(active, key=lambda m: (used[m] / weight[m] if self.seconds else len(self._of(result, m))))
            cap = None
            if self.seconds is not None:
                left = self.seconds - (used[name] if self.per_model else time.perf_counter() - t0)
                # a default trial shares what is left with the models still waiting for theirs (the
                # time fast models did not use goes to a slow one's first fit), but never more than half
                share = (sum(weight.values()) / weight[name] if not waiting
                         else max(len(waiting), 2 if len(active) > 1 else 1))
                cap = max(left if self.per_model else left / share, 0.0)
            need = self._needs(name, self._of(result, name))
            if cap is not None and need is not None and need > cap:
                done[name] = True  # even its fastest fit would overrun: the time goes to the others
                result.left[name] = (f"{MIN_EPOCHS} epochs take {need:.1f} s at its fastest pace, over the {cap:.1f} s "
                                     "left to it" if SPACES[name].neural
                                     else f"its fits take {need:.0f} s, over the {cap:.0f} s left to it")
                logger.info("%s leaves the search: %s", name, result.left[name])
                continue
            record, model = self._trial(name, len(result.records), cap, t0)
            used[name] += record["seconds"]
            self._keep(result, name, record, model)
            if self.per_model and self.seconds is not None and used[name] >= self.seconds:
                done[name] = True
            why = "" if done[name] else self._exhausted(name, self._of(result, name))
            if why:
                done[name], result.left[name] = True, why
            done[name] = done[name] or (
                self.per_model and self.n_trials is not None and len(self._of(result, name)) >= self.n_trials)
            if not self.per_model and self.race:
                self._race(result, done)
            if self.on_trial:
                self.on_trial(record, self.progress(result, t0, len(active)))
        result.seconds = time.perf_counter() - t0
        for name, cands in result.kept.items():
            for cand in cands:
                if cand.model is None:  # a kept trial from an earlier, killed process: refit its setting
                    params = dict(cand.params)
                    if SPACES[name].neural and cand.record.get("best_epoch"):
                        params["epochs"] = int(cand.record["best_epoch"])
                    cand.model, _ = fit_model(name, params, self.split, self.max_epochs)
        return result

    def _shares(self, result, active, ranked: bool) -> dict:
        """Each active model's weight in the time split: ``lead ** (models ahead of it)``, or 1 each."""
        if not ranked or self.per_model or self.lead == 1.0:
            return {m: 1.0 for m in active}
        best = {m: result.best[m].valid if m in result.best else -math.inf for m in active}
        # the Blend's members (none without it) stand as one model, scoring as their best
        group = set(self._members(result)) & set(active)
        top = max((best[m] for m in group), default=-math.inf)
        score = {m: top if m in group else best[m] for m in active}
        rivals = [o for o in active if o not in group]
        # ties share a rank, so models that score alike keep equal shares
        return {m: self.lead ** (sum(score[o] > score[m] for o in rivals) + (m not in group and top > score[m]))
                for m in active}

    def _members(self, result) -> list[str]:
        """The models the Blend would combine now (none without ``blend``)."""
        if not self.blend:
            return []
        members = blend_members({m: result.best[m].valid for m in self.models if m in result.best})
        return members if len(members) >= 2 else []

    def _race(self, result, done) -> None:
        """Models clearly behind the leader after a full trial leave the rotation; their time goes to the others."""
        lead = max((c.valid for c in result.best.values()), default=-math.inf)
        members = set(self._members(result))  # a weak member can still help the Blend
        for name, cand in result.best.items():
            full = any(r["state"] == "complete" for r in self._of(result, name))
            if not done[name] and name not in members and full and cand.valid < self.race * lead:
                result.left[name] = f"best {cand.valid:.4f} < {self.race:.2f} × the leader's {lead:.4f}"
                self.studies[name].set_user_attr("left", result.left[name])  # kept for a resumed search
                logger.info("%s leaves the search: %s", name, result.left[name])
                done[name] = True

    @staticmethod
    def _needs(name, records) -> float | None:
        """Seconds a trial of ``name`` needs to be worth running (None: no estimate yet): a closed-form
        model's fastest fit (it cannot stop part-way); :data:`MIN_EPOCHS` epochs at a neural model's
        fastest pace (fewer score a barely trained model; trials without recorded epochs give none)."""
        if not SPACES[name].neural:
            return min((r["seconds"] for r in records), default=None)
        return min((MIN_EPOCHS * r["seconds"] / r["epochs"] for r in records if r.get("epochs")), default=None)

    @staticmethod
    def _of(result, name):
        return [r for r in result.records if r["model"] == name]

    def _spent(self, result, used, t0) -> bool:
        if self.n_trials is not None:
            return not self.per_model and len(result.records) >= self.n_trials
        return not self.per_model and time.perf_counter() - t0 >= self.seconds

    def progress(self, result, t0, active) -> dict:
        """Best score so far (and whose), trials done, elapsed and time left (None with a trial budget)."""
        best = max(result.best.items(), key=lambda kv: kv[1].valid, default=(None, None))
        elapsed = time.perf_counter() - t0
        left = None
        if self.seconds is not None:
            total = self.seconds * (len(self.models) if self.per_model else 1)
            left = max(total - elapsed, 0.0)
        return {"best": best[1].valid if best[1] else float("nan"), "best_model": best[0],
                "trials": len(result.records), "elapsed": elapsed, "left": left,
                "trials_left": None if self.n_trials is None else max(self.n_trials - len(result.records), 0)}

    def _keep(self, result, name, record, model) -> None:
        result.records.append(record)
        if record["state"] not in ("complete", "stopped"):
            return
        kept = result.kept.setdefault(name, [])
        kept.append(Candidate(record["valid_ndcg@100"], record["params"], record, model))
        kept.sort(key=lambda c: -c.valid)  # stable: of equal scores the earlier trial stays first
        del kept[self.keep if SPACES[name].neural else 1:]  # dropped models free their memory
        result.best[name] = kept[0]

    # ------------------------------------------------------------------ one trial
    def _trial(self, name, order, cap, t0):
        import optuna  # lazy: the `tune` extra

        study = self.studies[name]
        n_done = len(self._finished(name))
        seed = int(np.random.SeedSequence([self.random_state, zlib.crc32(name.encode()), n_done]).generate_state(1)[0])
        # a fresh seeded sampler per trial: a resumed search draws what an uninterrupted one would
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.startup_trials)
        trial = study.ask(fixed_distributions=self.dists[name])
        # four significant digits: tidy settings to read and reuse, the same on every run
        params = {**SPACES[name].fixed, **self.fixed[name], **{k: float(f"{v:.4g}") if isinstance(v, float) else v
                                           for k, v in trial.params.items()}}
        deadline = None if cap is None else time.perf_counter() + cap
        stopped, ran = {}, {}

        def on_epoch(owner, epoch, logs):
            ran["epochs"] = epoch
            score = logs.get(METRIC)
            if score is not None and math.isfinite(score):
                trial.report(float(score), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}: validation {METRIC} {score:.4f}")
            if deadline is not None and time.perf_counter() >= deadline:
                stopped["epoch"] = epoch  # the time share is spent: keep the best epoch so far
                return True
            return False

        t = time.perf_counter()
        record = {"model": name, "trial": trial.number, "order": order, "params": params}
        model, state, value = None, "complete", float("nan")
        try:
            model, _ = fit_model(name, params, self.split, self.max_epochs, [on_epoch])
            value = valid_ndcg(model, self.split)
        except optuna.TrialPruned as exc:
            state = "pruned"
            value = float(str(exc).rsplit(" ", 1)[-1])  # the score it was pruned at
        except DataError as exc:  # a setting the model refuses: say where it came from
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise DataError(f"{name} refused the setting {json.dumps(params, default=str)} drawn from its search "
                            f"space: {exc}; narrow {name}'s space (spaces= / --space) to values it accepts") from None
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        secs = time.perf_counter() - t
        record.update({"valid_ndcg@100": value, "state": state, "seconds": secs, "elapsed": time.perf_counter() - t0})
        if model is not None and getattr(model, "best_epoch_", None) is not None and SPACES[name].neural:
            record["best_epoch"] = int(model.best_epoch_)
        if "epochs" in ran:
            record["epochs"] = ran["epochs"]
        if "epoch" in stopped:
            record["stopped_at_epoch"] = stopped["epoch"]
            record["state"] = state = "stopped"  # a usable model, but its score understates the setting
        trial.set_user_attr("record", record)
        trial.set_user_attr("order", order)
        if state != "complete":  # the sampler reads a cut-short trial by its last epoch's score
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        logger.info("%s trial %d %s: valid %s %.4f (%s, %.1f s)", name, trial.number, params, METRIC, value, state, secs)
        return record, model
