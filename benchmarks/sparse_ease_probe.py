"""SparseEASE against dense EASE: NDCG@100, fit time and peak memory, one fresh process per fit.

Protocol (as benchmarks/ease_ml1m.py): ratings > 3.5 are positives, users with >= 5 positives,
strong generalization with 10% / 10% held-out users, ``random_state=98765``, λ = 500.
Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the fitting process after the
fit; "before fit" is the same after loading and splitting the data.

    python benchmarks/sparse_ease_probe.py [--data 1m|100k|synthetic] [--densities 0.02,0.05,0.1]
        [--data-dir ../shared/data]
        [--out benchmarks/results/sparse_ease_probe_ml1m.md]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _env import environment, header_markdown


def one(args) -> dict:
    """Fit and evaluate one model in this process (``--one``)."""
    from recae import EASE, evaluate, strong_generalization_split
    from recae.datasets import load_movielens, synthetic
    from recae.exceptions import MemoryBudgetError
    from recae.models.sparse_ease import SparseEASE

    if args.data == "synthetic":  # a catalogue whose dense EASE (3 × n² floats) exceeds the default budget
        data = synthetic(n_users=100_000, n_items=50_000, n_interactions=2_000_000, popularity="longtail",
                         timestamps=False, random_state=0)
    else:
        data = load_movielens(args.data, data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    split = strong_generalization_split(data, 0.1, random_state=98765)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = EASE(l2=500.0, device="cpu") if args.one == "ease" else \
        SparseEASE(l2=500.0, density=float(args.one), device="cpu")
    start = time.perf_counter()
    try:
        model.fit(split.train)
    except MemoryBudgetError as exc:
        return {"model": type(model).__name__, "refused": str(exc).split(";")[0]}
    fit_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = evaluate(model, split, k=(100,), metrics=("ndcg",))
    n = split.train.n_items
    return {"model": "EASE" if args.one == "ease" else f"SparseEASE(density={args.one})",
            "n_items": n, "weights": n * n if args.one == "ease" else int(model.weights_.nnz),
            "ndcg100": float(res.loc["ndcg@100", "mean"]), "se": float(res.loc["ndcg@100", "se"]),
            "fit_s": fit_s, "rss_before_mib": before, "rss_peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="1m", choices=("100k", "1m", "synthetic"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--densities", default="0.02,0.05,0.1")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    rows = []
    for spec in ["ease"] + args.densities.split(","):
        cmd = [sys.executable, __file__, "--data", args.data, "--one", spec]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base = rows[0].get("ndcg100", float("nan"))
    name = "a synthetic long-tail log (100k users, 50k items)" if args.data == "synthetic" else f"ML-{args.data.upper()}"
    lines = [f"# SparseEASE vs EASE on {name}, strong generalization (seed 98765, λ = 500)\n",
             header_markdown(environment()),
             "| model | nonzero weights | NDCG@100 | ± se | ratio to EASE | fit s | RSS before fit MiB | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['model']} | {r['refused']} | | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['weights']} | {r['ndcg100']:.4f} | {r['se']:.4f} | "
                     f"{r['ndcg100'] / base:.4f} | {r['fit_s']:.2f} | {r['rss_before_mib']:.0f} | "
                     f"{r['rss_peak_mib']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
