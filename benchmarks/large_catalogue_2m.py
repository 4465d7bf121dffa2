"""FactorEASE on a 2M-item log: one training epoch and top-100 ranking, with peak RSS.

Log: ``synthetic(500_000 users, 2_000_000 items, 20_000_000 positives, popularity="longtail")``
(seed 0), all users trained. One epoch of ``FactorEASE(rank, batch_size, epochs=1)`` (the exact
loss, no validation) is timed in wall and CPU seconds. Then ``recommend(users, n=100)`` (seen
items left out, item-chunked top-k) is timed on every user (``--rank-users 0``, in blocks of
``--block`` users with a progress line each) or on a fixed seeded sample, whose users/s is then
extrapolated to all users. Peak RSS is the process's ``ru_maxrss`` (data, training and ranking
together, the top-100 lists of every user included).

    python benchmarks/large_catalogue_2m.py --rank 64 --rank-users 0 --threads 2 --out benchmarks/results/large_catalogue_2m.md
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
    ap.add_argument("--rank-users", type=int, default=4096, help="users ranked and timed (a seeded sample); 0: all")
    ap.add_argument("--block", type=int, default=16384, help="users per recommend call when ranking")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
    everyone = args.rank_users <= 0 or args.rank_users >= data.n_users
    users = (np.arange(data.n_users) if everyone else
             np.sort(np.random.default_rng(0).choice(data.n_users, args.rank_users, replace=False)))
    ids = model.user_ids_[users]
    model.recommend(ids[:8], n=100)  # warm-up: first-call allocations
    top = np.empty((len(ids), 100), dtype=model.item_ids_.dtype)
    scores = np.empty((len(ids), 100), dtype=np.float32)
    t, c = time.perf_counter(), time.process_time()
    for a in range(0, len(ids), args.block):
        top[a:a + args.block], scores[a:a + args.block] = model.recommend(ids[a:a + args.block], n=100)
        done = min(a + args.block, len(ids))
        print(f"ranked {done:,} / {len(ids):,} users, {done / (time.perf_counter() - t):.1f} users/s", flush=True)
    rank = {"users": len(ids), "all": everyone, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
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
             f"`FactorEASE(rank={args.rank}, batch_size={args.batch_size}, epochs=1)`, exact loss, "
             f"{args.threads} torch thread(s). Wall seconds on the shared 2-core machine; CPU seconds of the process "
             "beside them.", "",
             "| step | wall s | CPU s | peak RSS so far, GiB | note |", "|---|---|---|---|---|",
             f"| generate the log | {gen['wall_s']:.0f} | {gen['cpu_s']:.0f} | {gen['rss_gib']:.2f} | |",
             f"| one training epoch | {fit['wall_s']:.0f} | {fit['cpu_s']:.0f} | {fit['rss_gib']:.2f} | "
             f"{fit['steps']} steps, {fit['cpu_s'] / fit['steps']:.1f} CPU s/step, loss {fit['loss']:.4f} |",
             f"| top-100 for {'all' if everyone else 'sampled'} {rank['users']:,} users | {rank['wall_s']:.0f} | "
             f"{rank['cpu_s']:.0f} | "
             f"{rank['rss_gib']:.2f} | {rank['users_per_s']:.1f} users/s wall, {rank['users_per_cpu_s']:.1f} "
             f"users per CPU s; items in chunks of {model.item_chunk:,} |", "",
             (f"All {data.n_users:,} users were ranked ({rank['valid_ids']:.4f} of the 100 slots hold an item). "
              if everyone else
              f"All {data.n_users:,} users ranked at the measured rate would take "
              f"{rank['all_users_cpu_h']:.1f} CPU hours on one thread (extrapolated from the "
              f"{rank['users']:,}-user sample, not run). ")
             + f"Process peak RSS over everything: **{result['peak_rss_gib']:.2f} GiB**.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
