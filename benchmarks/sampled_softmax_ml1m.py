"""Sampled vs full softmax for Mult-DAE: quality on ML-1M, speed there and on a huge catalogue.

Quality protocol (as benchmarks/neural_ml1m.py): ML-1M ratings > 3.5, users with >= 5
positives, strong generalization split seed 98765 (10% / 10% held-out users); best epoch on
validation NDCG@100 (up to 100 epochs, patience 20), test NDCG@100 / Recall@20 once. The
sampled runs draw 10% or 25% of the catalogue per batch as negatives
(``MultDAE(sampled_softmax=...)``). One torch thread; the machine is shared, so CPU seconds
(``time.process_time``) are reported beside wall seconds and the comparison is by ratios.

Timing also runs on a catalogue-heavy synthetic log (5,000 users × 200,000 items), where the
output layer dominates and the approximation is meant to pay off.

    OMP_NUM_THREADS=1 python benchmarks/sampled_softmax_ml1m.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recae import MultDAE, evaluate, strong_generalization_split
from recae.datasets import load_movielens, synthetic

from _env import environment, header_markdown

OUT = Path(__file__).resolve().parent / "results"
SETTINGS = {"full softmax": None, "sampled 25%": 0.25, "sampled 10%": 0.10}


def train_seconds(X, sampled, epochs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of a training epoch (no validation in the loop)."""
    walls, cpus = [], []

    def clock(model, epoch, logs):
        walls.append(time.perf_counter())
        cpus.append(time.process_time())

    model = MultDAE(epochs=epochs, random_state=0, sampled_softmax=sampled)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, callbacks=[clock])
    w = [b - a for a, b in zip([t0] + walls[:-1], walls)]
    c = [b - a for a, b in zip([c0] + cpus[:-1], cpus)]
    return sorted(w)[len(w) // 2], sorted(c)[len(c) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    env = environment()
    data = load_movielens("1m", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(data, 0.1, random_state=98765)
    big = synthetic(n_users=5000, n_items=200_000, n_interactions=250_000, ratings=False, timestamps=False,
                    random_state=0).matrix
    rows = []
    for name, sampled in SETTINGS.items():
        t, c = time.perf_counter(), time.process_time()
        model = MultDAE(epochs=args.epochs, patience=20, random_state=0, sampled_softmax=sampled)
        model.fit(split.train, valid=split)
        fit_wall, fit_cpu = time.perf_counter() - t, time.process_time() - c
        r = evaluate(model, split, k=(20, 100), metrics=("ndcg", "truncated_recall"))
        ml_wall, ml_cpu = train_seconds(split.train.matrix, sampled, 3)
        big_wall, big_cpu = train_seconds(big, sampled, 2)
        rows.append({"setting": name, "sampled_softmax": sampled, "ndcg100": r.loc["ndcg@100", "mean"],
                     "ndcg100_se": r.loc["ndcg@100", "se"], "recall20": r.loc["truncated_recall@20", "mean"],
                     "best_epoch": model.best_epoch_, "epochs_run": len(model.history_),
                     "fit_wall_s": fit_wall, "fit_cpu_s": fit_cpu,
                     "ml1m_epoch_wall_s": ml_wall, "ml1m_epoch_cpu_s": ml_cpu,
                     "big_epoch_wall_s": big_wall, "big_epoch_cpu_s": big_cpu})
        print(rows[-1], flush=True)
    base = rows[0]
    result = {"env": env, "users": split.train.shape[0], "items": split.train.shape[1],
              "big_shape": list(big.shape), "big_nnz": int(big.nnz), "rows": rows}
    OUT.mkdir(exist_ok=True)
    (OUT / "sampled_softmax_ml1m.json").write_text(json.dumps(result, indent=1, default=float))
    md = ["# Sampled vs full softmax (Mult-DAE), ML-1M strong generalization, seed 98765\n", header_markdown(env),
          "- torch threads: 1; the machine (2 cores) was shared with other jobs, so compare CPU-second ratios\n",
          f"\nML-1M training matrix {split.train.shape[0]} × {split.train.shape[1]}; catalogue-heavy synthetic "
          f"log {big.shape[0]} × {big.shape[1]} ({big.nnz} nonzeros). Epoch times are medians of training-only "
          "epochs (no validation); ratios are CPU seconds relative to the full softmax.\n",
          "| setting | test NDCG@100 (± se) | Δ vs full | Recall@20 | best epoch | ML-1M s/epoch wall (CPU) | "
          "CPU ratio | 200k-item s/epoch wall (CPU) | CPU ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['setting']} | {r['ndcg100']:.4f} ± {r['ndcg100_se']:.4f} | {r['ndcg100'] - base['ndcg100']:+.4f} | "
                  f"{r['recall20']:.4f} | {r['best_epoch']} | {r['ml1m_epoch_wall_s']:.2f} ({r['ml1m_epoch_cpu_s']:.2f}) | "
                  f"{r['ml1m_epoch_cpu_s'] / base['ml1m_epoch_cpu_s']:.2f} | {r['big_epoch_wall_s']:.2f} "
                  f"({r['big_epoch_cpu_s']:.2f}) | {r['big_epoch_cpu_s'] / base['big_epoch_cpu_s']:.2f} |")
    md.append("")
    (OUT / "sampled_softmax_ml1m.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
