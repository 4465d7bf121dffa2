"""One FactorEASE training epoch on the 250k-item long-tail log, by rank and batch size.

The training users of large_catalogue.py's split (``synthetic-longtail``: 100k users × 250k items
× 2M positives, strong generalization seed 98765, so 80k users), the exact loss, no validation,
one torch thread, each setting in its own process (peak RSS is that process's ``ru_maxrss``,
the log included). Shows what a step costs at this catalogue size and how the batch size sets
the epoch (docs/scaling.md's cost model is calibrated on these rows).

    python benchmarks/large_catalogue_epochs.py --out benchmarks/results/large_catalogue_epochs.md
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _env import environment, header_markdown, write_results

SETTINGS = [(128, 512), (128, 4096), (256, 4096)]


def one(rank: int, batch: int) -> dict:
    import torch

    from recae import strong_generalization_split
    from recae.datasets import SYNTHETIC_LONGTAIL, synthetic
    from recae.models.factor_ease import FactorEASE

    torch.set_num_threads(1)
    split = strong_generalization_split(synthetic(**SYNTHETIC_LONGTAIL, random_state=0), 0.1, random_state=98765)
    t, c = time.perf_counter(), time.process_time()
    FactorEASE(rank=rank, batch_size=batch, epochs=1, patience=None, random_state=0).fit(split.train)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    steps = -(-split.train.n_users // batch)
    return {"rank": rank, "batch_size": batch, "users": split.train.n_users, "items": split.train.n_items,
            "steps": steps, "epoch_s": wall, "epoch_cpu_s": cpu, "cpu_s_per_step": cpu / steps,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*json.loads(args.one))), flush=True)
        return 0
    env = environment()
    rows = []
    for setting in SETTINGS:
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(setting)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    lines = ["# FactorEASE: one training epoch on the 250k-item long-tail log", "", header_markdown(env),
             f"{rows[0]['users']:,} training users × {rows[0]['items']:,} items (large_catalogue.py's split), exact "
             "loss, one torch thread, one process per row. Wall seconds on the shared 2-core machine; the "
             "process's CPU seconds beside them are the comparable figure.", "",
             "| rank | batch | steps | epoch wall s | epoch CPU s | CPU s / step | peak RSS GiB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rank']} | {r['batch_size']} | {r['steps']} | {r['epoch_s']:.0f} | {r['epoch_cpu_s']:.1f} | "
                     f"{r['cpu_s_per_step']:.2f} | {r['peak_rss_gib']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_results(args.out, text, env, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
