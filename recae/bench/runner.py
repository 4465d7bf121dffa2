"""Run every model on the same splits with the same tuning budget; collect one row per model and seed.

Tuning is on validation only. By default the search runs on the first seed's split and the
chosen setting is refitted on the other seeds' splits (``tune="every"`` searches on every
split). Each model's test metrics are computed once, with its chosen setting.

Thread pools: ``implicit`` runs its own OpenMP threads and is slowed badly when a
multithreaded BLAS sits in the same process (it then also warns on every fit), while torch
uses its OpenMP pool for everything else. The ALS/BPR adapters pin BLAS to one thread with
``threadpoolctl`` around implicit's calls only, so torch keeps its threads and implicit its
own; ``threads=`` sets torch's pool (and implicit's) for the whole run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import Interactions
from ..evaluate import evaluate
from ..exceptions import DataError
from ..models.peers import missing_peer
from ..models import Blend
from .memory import PeakRSS, lifetime_peak_bytes
from .protocols import check_validation, search_split, seed_list, split_seeds
from .fitting import fit_model, one_thread, valid_ndcg
from .search import Search
from .spaces import BLEND, BLEND_MEMBERS, DEFAULT_MODELS, ONE_THREAD, SPACES, check_models, trials

logger = logging.getLogger(__name__)

MIB = 2 ** 20
BASELINES = ("als", "bpr")


@dataclass
class BenchResult:
    """Everything a bench run measured.

    Attributes
    ----------
    rows : list of dict
        One per (seed, model): test metrics with standard errors, the chosen setting, its
        validation NDCG@100, fit seconds, scoring throughput and peak RSS.
    trials : list of dict
        Every tuning trial: model, seed, setting, validation NDCG@100, fit seconds.
    info : dict
        Dataset, protocol, seeds, budget, shape, thread settings.
    """

    rows: list = field(default_factory=list)
    trials: list = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def summary(self) -> list[dict]:
        """Per model: means over seeds, the std over seeds and ratios to the best implicit model."""
        out = []
        for name in dict.fromkeys(r["model"] for r in self.rows):
            rs = [r for r in self.rows if r["model"] == name]
            nd = np.array([r["ndcg@100"] for r in rs])
            s = {"model": name, "label": rs[0]["label"], "seeds": len(rs), "ndcg@100": float(nd.mean()),
                 "ndcg@100_split_std": float(nd.std(ddof=1)) if len(nd) > 1 else float("nan")}
            for key in rs[0]:
                if key.startswith(("recall", "ndcg")) or key.endswith("_se") or key in (
                        "fit_seconds", "tune_seconds", "users_per_second", "peak_rss_mib", "valid_ndcg@100"):
                    # tuning time: the split the search ran on (the others refit one setting)
                    agg = np.max if key == "tune_seconds" else np.mean
                    s.setdefault(key, float(agg([r[key] for r in rs])))
            out.append(s)
        base = [s["ndcg@100"] for s in out if s["model"] in BASELINES]
        for s in out:
            s["vs_best_mf"] = s["ndcg@100"] / max(base) if base else float("nan")
        return out


def load_result(path) -> tuple[BenchResult, dict]:
    """A bench run back from its JSON file: ``(result, env)``, e.g. to re-render its tables."""
    with open(path) as f:
        data = json.load(f)
    for records in (data["rows"], data["trials"]):  # JSON wrote NaN as null: a numeric column reads it back
        numeric = {k for r in records for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for r in records:
            r.update({k: math.nan for k in numeric if k in r and r[k] is None})
    return BenchResult(rows=data["rows"], trials=data["trials"], info=data["info"]), data["env"]


def _label(name: str, params: dict) -> str:
    return {"popularity": "Popularity", "als": "implicit ALS", "bpr": "implicit BPR", "ease": "EASE",
            "edlae": "EDLAE (EASE + dropout)", "linearae": "LinearAE (Blend member)", "sparseease": "SparseEASE", "factorease": "FactorEASE",
            "sansa": "sansa (SANSA, peer)", "elsa": "elsarec (ELSA, peer)", "multdae": "MultDAE", "multvae": "MultVAE", "cdae": "CDAE",
            "recvae": "RecVAE"}.get(name, name)


def _fit(name: str, params: dict, split, max_epochs):
    with PeakRSS() as mem:
        model, seconds = fit_model(name, params, split, max_epochs)
    return model, seconds, mem.peak


def _search(name, split, seconds, max_epochs, seed, result):
    """Equal wall-clock budget: the Optuna search of one model for ``seconds``; its best (valid, model, params, ...)."""
    with PeakRSS() as mem:
        found = Search(split, [name], seconds=seconds, per_model=True, max_epochs=max_epochs,
                       fixed=ONE_THREAD).run()
    for r in found.records:
        result.trials.append({"seed": seed, "model": name, "params": r["params"], "valid_ndcg@100": r["valid_ndcg@100"],
                              "fit_seconds": r["seconds"], "state": r["state"]})
    best = found.best[name]
    return (best.valid, best.model, best.params, best.record["seconds"], mem.peak), \
        sum(r["seconds"] for r in found.records)


def _test_row(model, split, ks, seed, name, label, params, fit_s, tune_s, peak, valid) -> dict:
    with PeakRSS() as mem:
        t = time.perf_counter()
        table = evaluate(model, split, k=ks, metrics=("ndcg", "truncated_recall"))
        score_s = time.perf_counter() - t
    row = {"seed": seed, "model": name, "label": label, "params": params, "valid_ndcg@100": valid}
    for metric, r in table.iterrows():
        key = metric.replace("truncated_recall", "recall")
        row[key], row[f"{key}_se"] = float(r["mean"]), float(r["se"])
    n_users = int(table["n_users"].iloc[0])
    row.update({"fit_seconds": fit_s, "tune_seconds": tune_s, "users_per_second": n_users / max(score_s, 1e-9),
                "peak_rss_mib": max(peak, mem.peak) / MIB, "n_test_users": n_users})
    if hasattr(model, "best_epoch_"):
        row["best_epoch"] = int(model.best_epoch_)
    return row


def run_bench(data, protocol: str = "strong", models=None, seeds=3, budget: int = 4, *, k=(20, 50, 100),
              tune: str = "first", max_epochs: int | None = None, threads: int | None = None,
              show_progress: bool = True, on_row=None, budget_seconds: float | None = None) -> BenchResult:
    """Tune, fit and test every model on the same splits.

    Parameters
    ----------
    data : Interactions
        Binary positives (see :func:`recae.bench.load_dataset`).
    protocol : {"strong", "holdout", "temporal"}
    models : sequence of str, optional
        Names from :data:`recae.bench.spaces.MODELS`; default :data:`~recae.bench.spaces.DEFAULT_MODELS`
        (what ``recae bench`` runs: the peers and the large-catalogue models only when named).
    seeds : int or list of int, default 3
        A count (seeds 98765, 1, 2, ...) or explicit split seeds. ``temporal`` uses one split.
    budget : int, default 4
        Trials per model (its default setting first, then random grid points).
    budget_seconds : float, optional
        Instead of ``budget``: an equal wall-clock budget per model, baselines included, spent
        by the Optuna search of :mod:`recae.bench.search` (its default first, then TPE, neural
        trials pruned per epoch), every model on one thread (torch, BLAS, implicit's OpenMP).
    k : sequence of int
        Cutoffs for NDCG and Recall; NDCG@100 must be among them.
    tune : {"first", "every"}
        Search on the first seed's split only, or on every split.
    max_epochs : int, optional
        Cap on the neural models' epochs (for large synthetic runs).
    threads : int, optional
        torch's thread count for the run (restored afterwards).
    on_row : callable, optional
        Called with each finished row (e.g. to save partial results).

    Returns
    -------
    BenchResult
    """
    if not isinstance(data, Interactions):
        raise DataError(f"data must be an Interactions log (recae.bench.load_dataset('ml-100k') loads a named "
                        f"dataset); got {type(data).__name__}")
    if isinstance(k, (str, bytes)) or not np.iterable(k) or not all(
            isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0 for x in k):
        raise DataError(f"k must be a sequence of positive integers such as (20, 50, 100); got {k!r}")
    for name, value in (("threads", threads), ("max_epochs", max_epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise DataError(f"{name} must be a positive integer or None; got {value!r}")
    models = check_models(models if models is not None else list(DEFAULT_MODELS))
    # a peer whose package is not installed is left out, and the results say why
    absent = {m: why for m in models if m in SPACES and SPACES[m].cls_name in ("SANSA", "ELSA")
              and (why := missing_peer(SPACES[m].cls_name))}
    for m, why in absent.items():
        logger.warning("%s left out of the bench: %s", m, why)
    models = [m for m in models if m not in absent]
    seeds = split_seeds(protocol, seed_list(seeds))
    if tune not in ("first", "every"):
        raise DataError(f"tune must be 'first' or 'every'; got {tune!r}")
    ks = sorted({int(x) for x in k} | {100})
    if budget_seconds is not None and (isinstance(budget_seconds, bool) or not isinstance(
            budget_seconds, (int, float)) or not 0 < budget_seconds < math.inf):
        raise DataError(f"budget_seconds must be a positive, finite number of seconds per model; got {budget_seconds!r}")
    timed = budget_seconds is not None
    threads = 1 if timed else threads
    result = BenchResult(info={"protocol": protocol, "seeds": seeds, "tune": tune,
                               "budget": None if timed else budget, "budget_seconds": budget_seconds,
                               "budget_kind": "seconds per model" if timed else "trials per model",
                               "models": models, "users": data.n_users, "items": data.n_items, "nnz": data.nnz,
                               "max_epochs": max_epochs, "k": ks, "absent": absent,
                               "metrics": {"ndcg@k": "NDCG over the top k, normalised by the ideal over min(k, held-out)",
                                           "recall@k": "truncated recall: hits / min(k, held-out), as the "
                                                       "autoencoder papers (recae.evaluate's truncated_recall@k)"}})
    plans = {m: [None] if timed else trials(m, budget) for m in models if m != BLEND}
    steps = sum(len(p) for p in plans.values()) + (len(seeds) - 1) * len(plans) * (tune == "first") \
        + sum(len(p) for p in plans.values()) * (len(seeds) - 1) * (tune == "every")
    old_threads = torch.get_num_threads()
    chosen: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        if threads:
            torch.set_num_threads(int(threads))
            stack.callback(torch.set_num_threads, old_threads)
        result.info["torch_threads"] = torch.get_num_threads()
        if timed:
            stack.enter_context(one_thread())
        bar = stack.enter_context(tqdm(total=steps, desc="bench", disable=None if show_progress else True))
        for i, seed in enumerate(seeds):
            split = search_split(data, protocol, seed)
            check_validation(split)  # an empty validation part would "tune" on NaN scores
            fitted, valids = {}, {}
            for name in plans:
                searching = i == 0 or tune == "every"
                settings = plans[name] if searching else [chosen[name]]
                best, tune_s = None, 0.0
                if timed and searching:
                    bar.set_postfix_str(f"seed {seed} {name}: {budget_seconds:g} s search")
                    best, tune_s = _search(name, split, budget_seconds, max_epochs, seed, result)
                    settings = []
                    bar.update(1)
                for params in settings:
                    bar.set_postfix_str(f"seed {seed} {name} {params}")
                    model, secs, peak = _fit(name, {**params, **ONE_THREAD.get(name, {})} if timed else params,
                                             split, max_epochs)
                    valid = valid_ndcg(model, split)
                    tune_s += secs
                    if searching:
                        result.trials.append({"seed": seed, "model": name, "params": params, "valid_ndcg@100": valid,
                                              "fit_seconds": secs})
                        logger.info("%s %s: valid ndcg@100 %.4f (%.1f s)", name, params, valid, secs)
                    if best is None or valid > best[0]:
                        best = (valid, model, params, secs, peak)
                    del model
                    bar.update(1)
                valid, model, params, secs, peak = best
                chosen[name] = params
                row = _test_row(model, split, ks, seed, name, _label(name, params), params, secs, tune_s, peak, valid)
                result.rows.append(row)
                if on_row:
                    on_row(row, result)
                if name in BLEND_MEMBERS:
                    fitted[name], valids[name] = (model, row), valid
                del model
            if BLEND in models:
                _blend_row(fitted, valids, split, ks, seed, result, on_row)
    result.info["lifetime_peak_rss_mib"] = lifetime_peak_bytes() / MIB
    return result


def _blend_row(fitted, valids, split, ks, seed, result, on_row) -> None:
    """The recae hybrid: the best full-rank linear member on validation, the low-rank one, every trained one."""
    linear = [m for m in ("edlae", "ease", "sparseease") if m in fitted]
    members = ([max(linear, key=valids.get)] if linear else []) + (["linearae"] if "linearae" in fitted else []) \
        + [m for m in fitted if SPACES[m].neural]
    if len(members) < 2:
        logger.warning("blend needs two members among %s; skipped", list(BLEND_MEMBERS))
        return
    with PeakRSS() as mem:
        t = time.perf_counter()
        blend = Blend.from_models([fitted[m][0] for m in members], valid=split)
        secs = time.perf_counter() - t
    fit_s = secs + sum(fitted[m][1]["fit_seconds"] for m in members)
    params = {"members": members, "weights": np.round(blend.weights_, 3).tolist()}
    label = "Blend (" + " + ".join(_label(m, {}).split(" ")[0] for m in members) + ")"
    row = _test_row(blend, split, ks, seed, BLEND, label, params, fit_s, secs, mem.peak,
                    float(blend.valid_score_) if blend.valid_score_ is not None else float("nan"))
    result.rows.append(row)
    if on_row:
        on_row(row, result)
