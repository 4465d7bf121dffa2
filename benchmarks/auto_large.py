"""`recae fit --model auto` past dense EASE's budget: SparseEASE at 200 neighbours per item against its default density.

Long-tail logs (5,000 users, 100,000 positives) at catalogues dense EASE refuses under the default
8 GiB budget. Each fit runs as `recae fit` in its own process (wall seconds and that process's peak
RSS); the default-density fit (what `auto` picked before) gets a time cap of ``--cap`` × the auto
fit's seconds, at least ``--min-cap`` seconds, so its row says "not done" rather than running for hours.

    python benchmarks/auto_large.py --out benchmarks/results/auto_large.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _env import environment, header_markdown, publish

from recae.datasets import synthetic


def fit(csv: Path, out: Path, params: list[str], limit: float) -> dict:
    """One `recae fit` in a child process: its outcome, wall seconds and its own peak RSS (GiB, from wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-m", "recae.cli", "fit", "--data", str(csv), "--min-user", "1",
                                  "--threads", "1", "--out", str(out), *params], stdout=subprocess.DEVNULL, stderr=err)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > limit:
                child.kill()
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.2)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        lines = err.read().strip().splitlines()
    timed_out = time.perf_counter() - start > limit
    outcome = (f"not done in {limit:.0f} s (stopped)" if timed_out else "fitted" if child.returncode == 0
               else (lines[-1] if lines else f"exit {child.returncode}")[:160])
    return {"outcome": outcome, "seconds": time.perf_counter() - start, "peak_gib": usage.ru_maxrss / 2**20}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, nargs="+", default=[50_000, 80_000])
    p.add_argument("--users", type=int, default=5_000)
    p.add_argument("--positives", type=int, default=100_000)
    p.add_argument("--cap", type=float, default=5.0, help="the default-density fit's time cap, × the auto fit's")
    p.add_argument("--min-cap", type=float, default=120.0)
    p.add_argument("--out")
    args = p.parse_args()
    env = environment()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_items in args.items:
            log = synthetic(args.users, n_items, args.positives, popularity="longtail", random_state=0)
            csv = Path(tmp) / f"log{n_items}.csv"
            log.to_pandas().to_csv(csv, index=False)
            auto = fit(csv, Path(tmp) / "auto.recae", ["--model", "auto"], 3600)
            cap = max(args.cap * auto["seconds"], args.min_cap)
            old = fit(csv, Path(tmp) / "old.recae", ["--model", "sparseease", "--param", "density=0.05"], cap)
            for label, r in (("auto (200 neighbours per item)", auto), ("SparseEASE density 0.05 (auto before)", old)):
                rows.append({"items": n_items, "fit": label, **r,
                             "x_auto_seconds": r["seconds"] / auto["seconds"]})
    lines = ["# `recae fit --model auto` on catalogues past dense EASE's budget\n", header_markdown(env),
             f"- logs: `synthetic({args.users:,}, items, {args.positives:,}, popularity=\"longtail\", random_state=0)`, "
             "written as CSV; each fit is `recae fit --data LOG --min-user 1 --threads 1` in its own process", "",
             "| items | fit | outcome | wall s | × auto's s | peak RSS GiB |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['items']:,} | {r['fit']} | {r['outcome']} | {r['seconds']:.1f} | {r['x_auto_seconds']:.2f} | "
              + f"{r['peak_gib']:.2f} |" for r in rows]
    lines += ["", "Peak RSS: the fit's own process (`os.wait4`; ru_maxrss is in KiB on Linux)."]
    return publish(args.out, "\n".join(lines) + "\n", env, rows)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
