"""Would the Blend gain from other weighting rules? Cross-validated on ML-1M's validation users.

Per-member validation NDCG@100 differs by history length (short histories favour the neural
members, long ones EDLAE and ALS), so one rule tried here gives each group of users by fold-in
length its own weights. The others add a seventh member (EASE or the tuned-by-default ALS) to the
bench Blend's six. Each rule is compared by repeated 2-fold cross-validation over the split's
validation users: weights are searched (as ``Blend`` does, ``search_weights`` with ``--bags``
bootstrap resamples) on one half and scored on the other, so a rule with more weights gains
nothing from fitting the users it is scored on. The test users are not looked at.

    python benchmarks/blend_activity.py --data-dir ../shared/data --members-dir /tmp/blend_members \
        --out benchmarks/results/blend_activity_ml1m.md

Members already in ``--members-dir`` (``m_<seed>_<name>.recae``, as ``blend_bags.py`` writes
them) are reused, not refitted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from _env import header_markdown, publish
from blend_bags import members_for, ml1m

from recae.bench import make_split
from recae.metrics import ndcg_at_k
from recae.models.blend import _standardize
from recae.models.blend_weights import search_weights

BASE = ("edlae", "linearae", "multdae", "multvae", "cdae", "recvae")
EXTRA = ("ease", "als")
SEEDS = (98765, 1, 2)


def member_scores(seed: int, split, folder: Path) -> dict:
    """name → standardised scores of the validation users, users × items."""
    fold_in = split.valid_fold_in.matrix
    with torch.no_grad():
        return {name: _standardize(model.score_rows(fold_in)).numpy()
                for name, model in zip(BASE + EXTRA, members_for(seed, split, folder, BASE + EXTRA))}


class Scorer:
    """Per-user NDCG@100 of weighted member scores on a subset of the validation users."""

    def __init__(self, scores: dict, names, fold_in, target, rows):
        self.stack = torch.as_tensor(np.stack([scores[n][rows] for n in names]))
        self.seen = torch.as_tensor(fold_in[rows].toarray() > 0)
        self.target = target[rows]
        self.cache: dict = {}

    def __call__(self, w: np.ndarray) -> np.ndarray:
        key = tuple(np.round(w, 9))
        if key not in self.cache:
            s = torch.tensordot(torch.as_tensor(w, dtype=torch.float32), self.stack, dims=1)
            s[self.seen] = -torch.inf
            top = torch.topk(s, 100, dim=1).indices.numpy()
            self.cache[key] = np.asarray(ndcg_at_k(top, self.target, 100), dtype=np.float64)
        return self.cache[key]


def rule(scores, names, fold_in, target, groups: int, bags: int):
    """fit on rows ``tr``, score rows ``ev``: weights per history-length group (quantiles of ``tr``)."""
    length = np.diff(fold_in.indptr)

    def run(tr: np.ndarray, ev: np.ndarray) -> np.ndarray:
        cuts = np.quantile(length[tr], np.linspace(0, 1, groups + 1)[1:-1])
        g_tr, g_ev = np.digitize(length[tr], cuts), np.digitize(length[ev], cuts)
        out = np.full(len(ev), np.nan)
        for g in range(groups):
            w, _ = search_weights(Scorer(scores, names, fold_in, target, tr[g_tr == g]), len(names), 0.05, bags, 0)
            if (g_ev == g).any():
                out[g_ev == g] = Scorer(scores, names, fold_in, target, ev[g_ev == g])(w)
        return out
    return run


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir")
    p.add_argument("--members-dir", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bags", type=int, default=10)
    p.add_argument("--out")
    args = p.parse_args()
    folder, env, data = ml1m(args)
    rules = {"one set of weights (the Blend)": (BASE, 1), "2 history-length groups": (BASE, 2),
             "3 history-length groups": (BASE, 3), "+ EASE": (BASE + ("ease",), 1), "+ ALS": (BASE + ("als",), 1)}
    rows, members = [], []
    for seed in SEEDS:
        split = make_split(data, "strong", seed)
        scores = member_scores(seed, split, folder)
        fold_in, target = split.valid_fold_in.matrix, split.valid_target.matrix
        length = np.diff(fold_in.indptr)
        third = np.digitize(length, np.quantile(length, [1 / 3, 2 / 3]))
        everyone = np.arange(fold_in.shape[0])
        for name in BASE + EXTRA:  # each member alone, by history length
            v = Scorer(scores, [name], fold_in, target, everyone)(np.ones(1))
            members.append({"seed": seed, "member": name, "all": float(np.nanmean(v)),
                            "thirds": [float(np.nanmean(v[third == t])) for t in range(3)]})
        runs = {k: rule(scores, names, fold_in, target, g, args.bags) for k, (names, g) in rules.items()}
        per_user = {k: [] for k in rules}
        rng = np.random.default_rng(0)
        for _ in range(args.repeats):
            halves = np.array_split(rng.permutation(fold_in.shape[0]), 2)
            for a, b in ((0, 1), (1, 0)):
                tr, ev = np.sort(halves[a]), np.sort(halves[b])
                for k, run in runs.items():
                    per_user[k].append(run(tr, ev))
        base = np.concatenate(per_user[next(iter(rules))])
        for k, parts in per_user.items():
            v = np.concatenate(parts)
            d = v - base
            ok = ~np.isnan(d)
            rows.append({"seed": seed, "rule": k, "cv_ndcg@100": float(np.nanmean(v)), "diff": float(d[ok].mean()),
                         "diff_se": float(d[ok].std(ddof=1) / np.sqrt(ok.sum() / args.repeats))})
            print(rows[-1], flush=True)
    lines = ["# Other Blend weighting rules, cross-validated on ML-1M strong validation users", "",
             header_markdown(env),
             f"Members: the bench Blend's six at their bench defaults (`recae.bench.fitting.fit_model`, one thread), "
             f"plus EASE and ALS at theirs, fitted once per split on its training users. Each rule's weights are "
             f"searched as the Blend searches them (`search_weights`, grid step 0.05, {args.bags} bags) on one half "
             f"of the validation users and scored on the other half; {args.repeats} random halvings × both "
             "directions, so every validation user is scored once per halving. `− Blend`: the mean per-user "
             "difference from the one-set rule on the same users, with a standard error that counts each user "
             "once per halving (halvings share users, so it is a rough guide). The test users are not used.", "",
             "| split | rule | CV validation NDCG@100 | − Blend ± se |", "|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['rule']} | {r['cv_ndcg@100']:.4f} | {r['diff']:+.4f} ± {r['diff_se']:.4f} |"
              for r in rows]
    means = {k: np.mean([r["diff"] for r in rows if r["rule"] == k]) for k in rules}
    lines += ["", "Mean difference from the Blend over the splits: "
              + ", ".join(f"{k} {v:+.4f}" for k, v in means.items()) + "."]
    lines += ["", "Each member alone on all the split's validation users, and on each third of them by fold-in "
              "length (shortest first; cut at the 1/3 and 2/3 quantiles):", "",
              "| split | member | validation NDCG@100 | shortest third | middle third | longest third |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {m['seed']} | {m['member']} | {m['all']:.4f} | " + " | ".join(f"{t:.4f}" for t in m["thirds"]) + " |"
              for m in members]
    return publish(args.out, "\n".join(lines) + "\n", env, rows + [{"kind": "member", **m} for m in members])


if __name__ == "__main__":
    raise SystemExit(main())
