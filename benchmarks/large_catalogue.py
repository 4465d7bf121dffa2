"""The large-catalogue models on a 250k-item long-tail log, against implicit ALS, on one split.

Log: ``synthetic-longtail`` (100k users × 250k items × 2M positives, power-law popularity, half
the items seen at most twice), strong generalization (10% validation and 10% test users,
seed 98765). Dense EASE would need 3 × 250k² floats (700 GiB) and is refused. Each model is
fitted in its own process (peak RSS is that process's ``ru_maxrss``), one thread, and scored
by ``recae.evaluate`` (test NDCG@100, Recall@20). ALS gets a small grid chosen on validation
NDCG@100, like recae bench's tuning.

    python benchmarks/large_catalogue.py --out benchmarks/results/large_catalogue_250k.md
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _env import environment, header_markdown, write_results

CONFIGS = [  # the settings of the committed run (its results file says which model got how many)
    ("SparseEASE", {"l2": 50.0, "density": 2e-4}),
    ("SparseEASE", {"l2": 15.0, "density": 2e-4}),
    ("SparseEASE", {"l2": 150.0, "density": 2e-4}),
    ("SparseEASE", {"l2": 400.0, "density": 2e-4}),
    # a large catalogue wants large batches: a step's cost is set by items × rank, not by the batch
    ("FactorEASE", {"rank": 256, "epochs": 12, "patience": 2, "batch_size": 4096, "lr": 0.001}),
    ("FactorEASE", {"rank": 256, "epochs": 12, "patience": 2, "batch_size": 4096, "lr": 0.005}),
    # the popularity exponent (chosen on a one-fit sweep, factor_ease_popularity.md), early stopping
    # on 2,500 validation users (--valid-users 2500)
    ("FactorEASE", {"rank": 256, "epochs": 20, "patience": 2, "batch_size": 4096, "lr": 0.001,
                    "popularity_exponent": 0.3}),
    ("FactorEASE", {"rank": 256, "epochs": 20, "patience": 2, "batch_size": 4096, "lr": 0.003,
                    "popularity_exponent": 0.3}),
    ("ImplicitALS", {"factors": 128, "regularization": 10.0, "alpha": 5.0, "iterations": 15}),
    ("ImplicitALS", {"factors": 128, "regularization": 50.0, "alpha": 2.0, "iterations": 15}),
    ("ImplicitALS", {"factors": 256, "regularization": 50.0, "alpha": 2.0, "iterations": 15}),
    ("Popularity", {}),
]


def one(name: str, params: dict, scale: float, valid_users: int | None = None) -> dict:
    import torch

    import recae
    from recae import evaluate, strong_generalization_split
    from recae.datasets import SYNTHETIC_LONGTAIL, synthetic
    from recae.models.inputs import validation_pair
    from recae.models.validation import validation_score

    torch.set_num_threads(1)
    shape = dict(SYNTHETIC_LONGTAIL)
    for k in ("n_users", "n_items", "n_interactions"):
        shape[k] = int(shape[k] * scale)
    data = synthetic(**shape, random_state=0)
    split = strong_generalization_split(data, 0.1, random_state=98765)
    model = getattr(recae, name)(**params)
    t, cpu = time.perf_counter(), time.process_time()
    kw = {}
    if name == "FactorEASE":
        # early stopping may read the first ``valid_users`` validation users only (a cheaper epoch);
        # the table's validation score below is always over all of them
        kw["valid"] = split if valid_users is None else tuple(
            m[:valid_users] for m in validation_pair(split, split.train.item_ids))
    model.fit(split.train, **kw)
    fit_s, fit_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    valid = validation_score(model, validation_pair(split, model.item_ids_), "ndcg@100")
    t = time.perf_counter()
    res = evaluate(model, split, k=(20, 100))
    eval_s = time.perf_counter() - t
    return {"model": name, "params": params, "valid_users_for_stopping": valid_users, "items": data.n_items, "users": data.n_users, "nnz": data.nnz,
            "valid_ndcg100": valid, "ndcg100": float(res.loc["ndcg@100", "mean"]),
            "recall20": float(res.loc["truncated_recall@20", "mean"]), "fit_s": fit_s, "fit_cpu_s": fit_cpu_s,
            "eval_s": eval_s, "best_epoch": getattr(model, "best_epoch_", None),
            "epochs": len(getattr(model, "history_", []) or []),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the log (e.g. 0.05 for a quick check)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--valid-users", type=int, help="FactorEASE: early stopping on this many validation users")
    ap.add_argument("--rows", help="write the report from these JSON lines (fits run as --one) instead of fitting")
    args = ap.parse_args()
    if args.one:
        name, params = json.loads(args.one)
        print(json.dumps(one(name, params, args.scale, args.valid_users)), flush=True)
        return 0
    env = environment()
    rows = []
    if args.rows:
        rows = [json.loads(line) for line in Path(args.rows).read_text().splitlines() if line.strip()]
    for name, params in ([] if args.rows else CONFIGS):
        cmd = [sys.executable, __file__, "--scale", str(args.scale), "--one", json.dumps([name, params])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"model": name, "params": params, "error": proc.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    als = [r for r in rows if r["model"] == "ImplicitALS" and "ndcg100" in r]
    best_als = max(als, key=lambda r: r["valid_ndcg100"]) if als else None
    lines = [f"# Large catalogue: {rows[0].get('items', '?'):,} items, long-tail log, strong generalization", "",
             header_markdown(env),
             "One process per fit, one torch thread; `× ALS`: test NDCG@100 over the ALS setting chosen on "
             "validation.", "",
             "| model | settings | valid NDCG@100 | test NDCG@100 | × ALS | trunc. Recall@20 | fit s (CPU s) | "
             "epochs (best) | peak RSS GiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "not_finished" in r:
            lines.append(f"| {r['model']} | `{json.dumps(r['params'])}` | {r['not_finished']} | | | | | | |")
            continue
        if "error" in r:
            lines.append(f"| {r['model']} | `{json.dumps(r['params'])}` | error: {r['error']} | | | | | | |")
            continue
        ratio = r["ndcg100"] / best_als["ndcg100"] if best_als else float("nan")
        lines.append(f"| {r['model']} | `{json.dumps(r['params'])}` | {r['valid_ndcg100']:.4f} | {r['ndcg100']:.4f} | "
                     f"{ratio:.3f} | {r['recall20']:.4f} | {r['fit_s']:.0f}"
                     + (f" ({r['fit_cpu_s']:.0f})" if "fit_cpu_s" in r else "") + " | "
                     + (f"{r['epochs']} ({r['best_epoch']})" if r.get("epochs") else "–") + " | "
                     f"{r['peak_rss_gib']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_results(args.out, text, env, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
