"""FactorEASE (factored EASE, ELSA-like) against dense EASE on ML-1M, strong generalization.

Protocol (as benchmarks/ease_ml1m.py, first split): ratings > 3.5 are positives, users with
>= 5 positives, strong generalization split seed 98765 (10% / 10% held-out users, 80/20
fold-in/target). EASE(l2=500) is the reference. Each FactorEASE setting trains with early
stopping on validation NDCG@100 (``fit(valid=split)``); the setting with the best validation
NDCG@100 is the chosen one, and test NDCG@100 is read once per setting. The class defaults are
also fitted as they stand, with and without validation, plus one sampled-negatives run.
Last, one training epoch (defaults, no validation) of the exact and a sampled loss on a
catalogue-heavy synthetic log (5,000 users × 200,000 items), where items · rank² per step dominates.
One torch thread. Peak RSS is the process's resident memory while fitting (data included).

    python benchmarks/factor_ease_probe.py [--data-dir ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recae import EASE, evaluate, strong_generalization_split
from recae.bench.memory import PeakRSS, lifetime_peak_bytes
from recae.datasets import load_movielens, synthetic
from recae.models.factor_ease import FactorEASE

from _env import environment, header_markdown

OUT = Path(__file__).resolve().parent / "results"
SEED = 98765
GRID = [dict(rank=r, batch_size=b, lr=lr) for r in (128, 256, 512) for b, lr in ((256, 0.01), (512, 0.01))]
TRAIN = dict(epochs=50, patience=5)


def run(name: str, make, split, valid: bool) -> dict:
    model = make()
    with PeakRSS() as mem:
        t, c = time.perf_counter(), time.process_time()
        model.fit(split.train, valid=split if valid else None)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    test = evaluate(model, split, k=(20, 100), metrics=("ndcg", "truncated_recall"))
    row = {"name": name, "params": {k: v for k, v in model.get_params().items() if k in
                                    ("rank", "batch_size", "lr", "epochs", "patience", "negatives", "l2")},
           "fit_s": wall, "fit_cpu_s": cpu, "peak_rss_mib": mem.peak / 2**20,
           "test_ndcg100": test.loc["ndcg@100", "mean"], "test_se": test.loc["ndcg@100", "se"],
           "test_recall20": test.loc["truncated_recall@20", "mean"],
           "valid_ndcg100": evaluate(model, split, k=100, metrics=("ndcg",), part="valid").loc["ndcg@100", "mean"]}
    hist = getattr(model, "history_", None)
    if hist:
        row["epochs_run"], row["best_epoch"] = len(hist), model.best_epoch_
        row["s_per_epoch"] = sum(h["seconds"] for h in hist) / len(hist)
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return row


def wide_epoch(X, negatives) -> dict:
    """One training epoch of the defaults on a wide catalogue: wall and CPU seconds, peak RSS."""
    with PeakRSS() as mem:
        t, c = time.perf_counter(), time.process_time()
        FactorEASE(epochs=1, negatives=negatives).fit(X)
        row = {"negatives": negatives, "epoch_s": time.perf_counter() - t, "epoch_cpu_s": time.process_time() - c}
    row["peak_rss_mib"] = mem.peak / 2**20
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--quick", action="store_true", help="two grid points, for a smoke run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    env = environment()
    data = load_movielens("1m", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(data, 0.1, random_state=SEED)
    ease = run("EASE(l2=500)", lambda: EASE(l2=500.0), split, valid=False)
    grid = GRID[2:4] if args.quick else GRID
    rows = [run(f"grid {g}", lambda g=g: FactorEASE(**g, **TRAIN), split, valid=True) for g in grid]
    best = max(rows, key=lambda r: r["valid_ndcg100"])
    extra = [run("FactorEASE() defaults, valid", lambda: FactorEASE(), split, valid=True),
             run("FactorEASE() defaults, no valid", lambda: FactorEASE(), split, valid=False),
             run("FactorEASE(negatives=0.25), valid", lambda: FactorEASE(negatives=0.25), split, valid=True)]
    ml_peak = lifetime_peak_bytes() / 2**20  # before the wide-catalogue runs
    big = synthetic(n_users=5000, n_items=200_000, n_interactions=250_000, ratings=False, timestamps=False,
                    random_state=0).matrix
    wide = [wide_epoch(big, None), wide_epoch(big, 2000)]
    result = {"env": env, "ease": ease, "grid": rows, "chosen": best["name"], "extra": extra, "wide": wide,
              "wide_shape": list(big.shape), "wide_nnz": int(big.nnz),
              "ml1m_lifetime_peak_rss_mib": ml_peak, "lifetime_peak_rss_mib": lifetime_peak_bytes() / 2**20}
    OUT.mkdir(exist_ok=True)
    (OUT / "factor_ease_ml1m.json").write_text(json.dumps(result, indent=1, default=float))
    ref = ease["test_ndcg100"]
    lines = ["# FactorEASE vs EASE on ML-1M, strong generalization (split seed 98765)\n", header_markdown(env),
             f"- data: {split.train.n_users} train users × {split.train.n_items} items; "
             "torch threads: 1; machine shared with other jobs (CPU seconds beside wall seconds)\n",
             "FactorEASE settings train up to 50 epochs with patience 5 on validation NDCG@100; the chosen "
             "setting is the best on validation (**bold**). `× EASE`: test NDCG@100 over EASE(l2=500)'s. "
             "Peak RSS: the process while fitting (the data included).\n",
             "| run | valid NDCG@100 | test NDCG@100 ± se | × EASE | Recall@20 | epochs (best) | s/epoch | "
             "fit s (CPU s) | peak RSS MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in [ease, *rows, *extra]:
        name = f"**{r['name']}**" if r is best else r["name"]
        ep = f"{r['epochs_run']} ({r['best_epoch']})" if "epochs_run" in r else "–"
        spe = f"{r['s_per_epoch']:.2f}" if "s_per_epoch" in r else "–"
        lines.append(f"| {name} | {r['valid_ndcg100']:.4f} | {r['test_ndcg100']:.4f} ± {r['test_se']:.4f} | "
                     f"{r['test_ndcg100'] / ref:.3f} | {r['test_recall20']:.4f} | {ep} | {spe} | "
                     f"{r['fit_s']:.1f} ({r['fit_cpu_s']:.1f}) | {r['peak_rss_mib']:.0f} |")
    lines.append(f"\nChosen on validation: {best['name']}: test NDCG@100 {best['test_ndcg100']:.4f} = "
                 f"{best['test_ndcg100'] / ref:.3f} × EASE ({ref:.4f}), fit {best['fit_s']:.1f} s. "
                 f"Process lifetime peak RSS over the ML-1M runs {ml_peak:.0f} MiB.\n")
    lines += [f"\n## One training epoch on a synthetic {big.shape[0]} × {big.shape[1]} log ({big.nnz} nonzeros)\n",
              "Defaults (rank 256, batch 512), no validation. Batches reach the loss as coordinates "
              "(`SparseRows`), never as a dense batch × items block.\n",
              "| loss | epoch s (CPU s) | peak RSS MiB |", "|---|---|---|"]
    for r in wide:
        name = "exact (negatives=None)" if r["negatives"] is None else f"sampled (negatives={r['negatives']})"
        lines.append(f"| {name} | {r['epoch_s']:.1f} ({r['epoch_cpu_s']:.1f}) | {r['peak_rss_mib']:.0f} |")
    lines.append(f"\nProcess lifetime peak RSS, all runs: {result['lifetime_peak_rss_mib']:.0f} MiB.\n")
    (OUT / "factor_ease_ml1m.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
