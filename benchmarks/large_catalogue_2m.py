"""FactorEASE on a 2M-item log: one training epoch and top-100 ranking, with peak RSS.

Log: ``synthetic(500_000 users, 2_000_000 items, 20_000_000 positives, popularity="longtail")``
(seed 0), all users trained. One epoch of ``FactorEASE(rank, batch_size, epochs=1)`` (the exact
loss, no validation) is timed in wall and CPU seconds. Then ``recommend(users, n=100)`` (seen
items left out, item-chunked top-k) is timed on a fixed seeded sample of users, in blocks, and
users/s is extrapolated to all users (a full pass over 500k users takes hours on 2 shared
cores). Peak RSS is the process's ``ru_maxrss`` (data, training and ranking together). One torch
thread.

    python benchmarks/large_catalogue_2m.py --out benchmarks/results/large_catalogue_2m.md
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from _env import environment, header_markdown


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the log (e.g. 0.01 for a smoke run)")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--rank-users", type=int, default=4096, help="users ranked and timed (a seeded sample)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from recae.datasets import synthetic
    from recae.models.factor_ease import FactorEASE

    env = environment()
    shape = {k: int(v * args.scale) for k, v in
             {"n_users": 500_000, "n_items": 2_000_000, "n_interactions": 20_000_000}.items()}
    t, c = time.perf_counter(), time.process_time()
    data = synthetic(**shape, popularity="longtail", random_state=0)
    gen = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "rss_gib": rss_gib()}
    print("generated", data.n_users, data.n_items, data.nnz, gen, flush=True)
    model = FactorEASE(rank=args.rank, batch_size=args.batch_size, epochs=1, patience=None, random_state=0)
    t, c = time.perf_counter(), time.process_time()
    model.fit(data)
    fit = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "rss_gib": rss_gib(),
           "steps": -(-data.n_users // args.batch_size), "loss": model.history_[-1]["loss"]}
    print("epoch", fit, flush=True)
    users = np.sort(np.random.default_rng(0).choice(data.n_users, min(args.rank_users, data.n_users), replace=False))
    ids = model.user_ids_[users]
    model.recommend(ids[:8], n=100)  # warm-up: first-call allocations
    t, c = time.perf_counter(), time.process_time()
    top, scores = model.recommend(ids, n=100)
    rank = {"users": len(ids), "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
            "rss_gib": rss_gib(), "valid_ids": float(np.mean(top != -1))}
    rank["users_per_s"] = len(ids) / rank["wall_s"]
    rank["users_per_cpu_s"] = len(ids) / rank["cpu_s"]
    rank["all_users_cpu_h"] = data.n_users / rank["users_per_cpu_s"] / 3600
    print("rank", rank, flush=True)
    result = {"env": env, "shape": [data.n_users, data.n_items, data.nnz], "rank": args.rank,
              "batch_size": args.batch_size, "generate": gen, "epoch": fit, "ranking": rank,
              "peak_rss_gib": rss_gib(), "item_chunk": model.item_chunk}
    lines = [f"# FactorEASE on a {data.n_items:,}-item long-tail log: one epoch and top-100 ranking", "",
             header_markdown(env),
             f"Log: {data.n_users:,} users × {data.n_items:,} items × {data.nnz:,} positives "
             "(`synthetic(..., popularity=\"longtail\")`, seed 0), all users trained. "
             f"`FactorEASE(rank={args.rank}, batch_size={args.batch_size}, epochs=1)`, exact loss, one torch thread. "
             "Wall seconds on the shared 2-core machine; CPU seconds of the process beside them.", "",
             "| step | wall s | CPU s | peak RSS so far, GiB | note |", "|---|---|---|---|---|",
             f"| generate the log | {gen['wall_s']:.0f} | {gen['cpu_s']:.0f} | {gen['rss_gib']:.2f} | |",
             f"| one training epoch | {fit['wall_s']:.0f} | {fit['cpu_s']:.0f} | {fit['rss_gib']:.2f} | "
             f"{fit['steps']} steps, {fit['cpu_s'] / fit['steps']:.1f} CPU s/step, loss {fit['loss']:.4f} |",
             f"| top-100 for {rank['users']:,} sampled users | {rank['wall_s']:.0f} | {rank['cpu_s']:.0f} | "
             f"{rank['rss_gib']:.2f} | {rank['users_per_s']:.1f} users/s wall, {rank['users_per_cpu_s']:.1f} "
             f"users per CPU s; items in chunks of {model.item_chunk:,} |", "",
             f"All {data.n_users:,} users ranked at the measured rate would take "
             f"{rank['all_users_cpu_h']:.1f} CPU hours on one thread (extrapolated from the "
             f"{rank['users']:,}-user sample, not run). Process peak RSS over everything: "
             f"**{result['peak_rss_gib']:.2f} GiB**.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
