"""Time and peak memory to generate an ML-20M-shaped synthetic log (the scale-test workload).

Shape after the usual ML-20M filtering: 136,677 users × 20,108 items, ~10M positives.

    python benchmarks/synthetic_scale.py
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np

from recae.datasets import synthetic

from _env import environment, header_markdown

OUT = Path(__file__).resolve().parent / "results"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    env = environment()
    before = peak_rss_mib()
    t = time.perf_counter()
    log = synthetic(n_users=136_677, n_items=20_108, n_interactions=10_000_000, random_state=0)
    seconds = time.perf_counter() - t
    per_user = np.diff(log.matrix.indptr)
    per_item = np.sort(np.bincount(log.matrix.indices, minlength=log.n_items))[::-1]
    top10 = per_item[: log.n_items // 10].sum() / log.nnz
    result = {"env": env, "users": log.n_users, "items": log.n_items, "nnz": log.nnz, "seconds": seconds,
              "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before, "min_per_user": int(per_user.min()),
              "median_per_user": float(np.median(per_user)), "top10pct_item_share": float(top10)}
    OUT.mkdir(exist_ok=True)
    (OUT / "synthetic_scale.json").write_text(json.dumps(result, indent=1, default=float))
    md = ["# ML-20M-shaped synthetic log: generation time and memory\n", header_markdown(env),
          "| users | items | interactions | seconds | peak RSS (MiB) | RSS after imports (MiB) | min / median per user | top 10% items' share |",
          "|---|---|---|---|---|---|---|---|",
          f"| {log.n_users} | {log.n_items} | {log.nnz} | {seconds:.1f} | {result['peak_rss_mib']:.0f} | {before:.0f} | "
          f"{result['min_per_user']} / {result['median_per_user']:.0f} | {top10:.1%} |", ""]
    (OUT / "synthetic_scale.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
