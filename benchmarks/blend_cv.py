"""Would another Blend rule help tune? Decided on validation users alone, by cross-validation.

Every Blend idea measured so far against the test users of the three ML-1M splits came out
within a fraction of a standard error, and choosing among several of them by test score
would be choosing on test noise. This script decides on validation users only: on the member
scores that ``blend_cache.py`` saved from the committed tune searches, each candidate rule
learns its weights as tune does (bagged coordinate ascent, :func:`recae.models.blend.search_weights`)
on 4 of 5 folds of the validation users and is scored on the fifth; the mean over all
validation users (``cv``) is an estimate that the weights were not fitted on. ``test`` (the
weights learned on all validation users, scored on the test users) is reported for the record.

Studies (``--study``):

- ``standardise``: how member scores are made comparable before the weighted sum. ``z``
  (the Blend's: z-score over the whole catalogue), ``z_unseen`` (over the user's unseen
  items: seen items, which reconstructing models score high, no longer widen the spread),
  ``z_top200`` (the mean and spread of the 200 best unseen scores, the region that is ranked),
  ``rank`` (``-log(1 + rank)`` among unseen items), and ``z_2buckets`` (z, with one set of
  weights per half of the users by history length).
- ``members``: the committed Blend's members (``z``), and with FactorEASE at its defaults
  or the search's best ALS trial as a further member (``blend_cache.py --extra``).

    python benchmarks/blend_cache.py --dataset ml-1m --stem tune_ml-1m_20m_threads2_group --threads 2 --cache /tmp/bc
    python benchmarks/blend_cache.py --dataset ml-1m --stem tune_ml-1m_20m_threads2_group --threads 2 --cache /tmp/bc --extra factorease als
    python benchmarks/blend_cv.py --dataset ml-1m --study standardise --cache /tmp/bc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from _env import environment, header_markdown, publish

from recae.metrics import ndcg_at_k
from recae.models.blend_weights import search_weights

RESULTS = Path(__file__).resolve().parent / "results"
STUDIES = {"standardise": ("z", "z_unseen", "z_top200", "rank", "z_2buckets"),
           "members": ("z", "+factorease", "+als")}
FOLDS = 5


def standardise(S: np.ndarray, seen: torch.Tensor, how: str) -> torch.Tensor:
    """Per-user comparable scores of one member, users × items."""
    S = torch.as_tensor(S, dtype=torch.float32)
    if how == "rank":
        order = torch.argsort(-S.masked_fill(seen, float("-inf")), dim=1)
        return -torch.log1p(torch.argsort(order, dim=1).float())
    if how == "z_unseen":
        unseen = (~seen).float()
        n = unseen.sum(1, keepdim=True)
        mu = (S * unseen).sum(1, keepdim=True) / n
        sd = ((((S - mu) ** 2) * unseen).sum(1, keepdim=True) / n).sqrt()
    elif how == "z_top200":
        top = torch.topk(S.masked_fill(seen, float("-inf")), 200, dim=1).values
        mu, sd = top.mean(1, keepdim=True), top.std(1, keepdim=True, unbiased=False)
    else:  # z, as Blend does
        mu, sd = S.mean(1, keepdim=True), S.std(1, keepdim=True, unbiased=False)
    return (S - mu) / sd.clamp_min(1e-8)


class Users:
    """Per-user NDCG@100 of weighted member scores, cached per weights (one part of a split)."""

    def __init__(self, scores: torch.Tensor, fold_in: np.ndarray, target: np.ndarray):
        self.scores, self.seen = scores, torch.as_tensor(fold_in.astype(bool))
        self.truth = sp.csr_matrix(target.astype(np.float32))
        self.k = min(100, target.shape[1])
        self.cache: dict = {}

    def __call__(self, w: np.ndarray) -> np.ndarray:
        key = tuple(np.round(w, 9))
        if key not in self.cache:
            s = torch.tensordot(torch.as_tensor(w, dtype=torch.float32), self.scores, dims=1)
            top = torch.topk(s.masked_fill(self.seen, float("-inf")), self.k, dim=1).indices.numpy()
            self.cache[key] = np.asarray(ndcg_at_k(top, self.truth, self.k), dtype=np.float64)
        return self.cache[key]


def restricted(users, idx):
    """``users`` over the users ``idx`` only (a fold's, or a bucket's)."""
    return lambda w: users(w)[idx]


def candidate(d: dict, name: str, bags: int) -> dict:
    """Validation, cross-validated and test per-user NDCG@100 of one rule on one cached split."""
    how = "z" if name.startswith("+") or name == "z_2buckets" else name
    extra = [f"extra_{name[1:]}"] if name.startswith("+") else []
    parts = {}
    for part in ("valid", "test"):
        seen = torch.as_tensor(d[f"{part}_X"].astype(bool))
        raw = list(d[f"{part}_S"]) + [d[f"{e}_{part}_S"] for e in extra]
        parts[part] = Users(torch.stack([standardise(s, seen, how) for s in raw]), d[f"{part}_X"], d[f"{part}_T"])
    valid, test = parts["valid"], parts["test"]
    n = valid.scores.shape[0]
    # users by history length: one bucket, or two halves at the validation users' median
    lengths = {p: d[f"{p}_X"].sum(1) for p in parts}
    edge = np.median(lengths["valid"]) if name == "z_2buckets" else np.inf
    bucket = {p: (lengths[p] > edge).astype(int) for p in parts}
    fold = np.random.default_rng(123).permutation(len(lengths["valid"])) % FOLDS
    out = {p: np.zeros(len(lengths[p])) for p in ("valid", "test")}
    out["cv"], weights = np.zeros(len(lengths["valid"])), []
    for b in sorted(set(bucket["valid"])):
        idx = np.flatnonzero(bucket["valid"] == b)
        w, _ = search_weights(restricted(valid, idx), n, bags=bags)
        weights.append(np.round(w, 3).tolist())
        out["valid"][idx] = valid(w)[idx]
        t = np.flatnonzero(bucket["test"] == b)
        out["test"][t] = test(w)[t]
        for f in range(FOLDS):
            w, _ = search_weights(restricted(valid, idx[fold[idx] != f]), n, bags=bags)
            held = idx[fold[idx] == f]
            out["cv"][held] = valid(w)[held]
    return {"weights": weights, **out}


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = a - b
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    p.add_argument("--study", choices=list(STUDIES), default="standardise")
    p.add_argument("--cache", default="/tmp/bc")
    p.add_argument("--bags", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    env = environment()
    rows = []
    for seed in args.seeds:
        z = np.load(Path(args.cache) / f"{args.dataset}_{seed}.npz")
        d = {k: z[k] for k in z.files}
        base = None
        for name in STUDIES[args.study]:
            r = candidate(d, name, args.bags)
            base = base or r
            row = {"seed": seed, "rule": name, "weights": r["weights"], "valid": float(r["valid"].mean()),
                   "cv": float(r["cv"].mean()), "test": float(r["test"].mean()),
                   "cv_gain": paired(r["cv"], base["cv"]), "test_gain": paired(r["test"], base["test"])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    members = ", ".join(str(m) for m in d["members"])
    lines = [f"# Blend rules cross-validated on validation users: {args.dataset}, study `{args.study}`\n",
             header_markdown(env),
             f"Member scores from `blend_cache.py` (the committed `tune_{args.dataset}_20m_threads2_group` searches' "
             f"Blend members, {members}, refitted on each split's training users). `valid`: weights learned on all "
             f"validation users, scored on them; `cv`: learned on 4 of {FOLDS} folds of the validation users, scored "
             "on the fifth (bagged weights, 30 bags, as tune); `test`: the `valid` weights on the test users. Gains "
             "are paired differences from the first rule over the same users ± their standard error.\n",
             "| split | rule | weights | valid NDCG@100 | cv NDCG@100 | cv gain ± se | test NDCG@100 | test gain ± se |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['rule']} | {r['weights']} | {r['valid']:.4f} | {r['cv']:.4f} | "
              f"{r['cv_gain'][0]:+.4f} ± {r['cv_gain'][1]:.4f} | {r['test']:.4f} | "
              f"{r['test_gain'][0]:+.4f} ± {r['test_gain'][1]:.4f} |" for r in rows]
    lines += ["", "| rule | mean cv gain | splits with cv gain > 0 | mean test gain |", "|---|---|---|---|"]
    for name in STUDIES[args.study][1:]:
        mine = [r for r in rows if r["rule"] == name]
        lines.append(f"| {name} | {np.mean([r['cv_gain'][0] for r in mine]):+.4f} | "
                     f"{sum(r['cv_gain'][0] > 0 for r in mine)} of {len(mine)} | "
                     f"{np.mean([r['test_gain'][0] for r in mine]):+.4f} |")
    out = args.out or RESULTS / f"blend_cv_{args.study}_{args.dataset}.md"
    publish(out, "\n".join(lines) + "\n", env, rows)


if __name__ == "__main__":
    main()
