"""EASE on ML-1M, strong generalization, five user splits (the foundation issue's target).

Protocol (../shared/docs/evaluation.md): ratings > 3.5 are positives, users with >= 5
positives, 10% / 10% held-out users, 80/20 fold-in/target. Per split, l2 is chosen on
validation NDCG@100 from {200, 500, 1000}; the fixed l2 = 500 is reported too.

    python benchmarks/ease_ml1m.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recae import EASE, evaluate, strong_generalization_split
from recae.datasets import load_movielens

from _env import environment, header_markdown

SEEDS = (98765, 1, 2, 3, 4)
GRID = (200.0, 500.0, 1000.0)
OUT = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    env = environment()
    data = load_movielens("1m", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    rows = []
    for seed in SEEDS:
        split = strong_generalization_split(data, 0.1, random_state=seed)
        valid, test, fit_s = {}, {}, {}
        for l2 in GRID:
            t = time.perf_counter()
            model = EASE(l2=l2).fit(split.train)
            fit_s[l2] = time.perf_counter() - t
            valid[l2] = evaluate(model, split, k=100, metrics=("ndcg",), part="valid").loc["ndcg@100", "mean"]
            test[l2] = evaluate(model, split, k=(20, 50, 100), metrics=("ndcg", "truncated_recall"))
        best = max(GRID, key=lambda l: valid[l])
        t500 = test[500.0]
        rows.append({"seed": seed, "n_train_users": split.train.n_users, "n_items": split.train.n_items,
                     "n_test_users": int(t500.loc["ndcg@100", "n_users"]),
                     "ndcg100_l2_500": t500.loc["ndcg@100", "mean"], "se_l2_500": t500.loc["ndcg@100", "se"],
                     "recall20_l2_500": t500.loc["truncated_recall@20", "mean"],
                     "recall50_l2_500": t500.loc["truncated_recall@50", "mean"],
                     "best_l2_on_valid": best, "ndcg100_best": test[best].loc["ndcg@100", "mean"],
                     "fit_seconds_l2_500": fit_s[500.0]})
        print(rows[-1], flush=True)
    nd = np.array([r["ndcg100_l2_500"] for r in rows])
    summary = {"ndcg100_mean": nd.mean(), "ndcg100_std": nd.std(ddof=1), "ndcg100_min": nd.min(), "ndcg100_max": nd.max()}
    OUT.mkdir(exist_ok=True)
    (OUT / "ease_ml1m.json").write_text(json.dumps({"env": env, "rows": rows, "summary": summary}, indent=1, default=float))
    lines = ["# EASE on ML-1M, strong generalization (5 user splits)\n", header_markdown(env),
             "\nRecall@k is hits / min(k, |target|). λ = 500 throughout the main columns; the last two columns "
             "pick λ ∈ {200, 500, 1000} on validation NDCG@100.\n",
             "| seed | train users | items | test users | NDCG@100 (λ=500) | ± se | Recall@20 | Recall@50 | fit s | best λ (valid) | NDCG@100 (best λ) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['n_train_users']} | {r['n_items']} | {r['n_test_users']} | {r['ndcg100_l2_500']:.4f} | "
                     f"{r['se_l2_500']:.4f} | {r['recall20_l2_500']:.4f} | {r['recall50_l2_500']:.4f} | "
                     f"{r['fit_seconds_l2_500']:.2f} | {r['best_l2_on_valid']:g} | {r['ndcg100_best']:.4f} |")
    lines.append(f"\nNDCG@100 (λ = 500) over the 5 splits: mean **{summary['ndcg100_mean']:.4f}**, std "
                 f"{summary['ndcg100_std']:.4f}, min {summary['ndcg100_min']:.4f}, max {summary['ndcg100_max']:.4f} "
                 "(reference implementation: 0.414–0.424, mean 0.419).\n")
    (OUT / "ease_ml1m.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
