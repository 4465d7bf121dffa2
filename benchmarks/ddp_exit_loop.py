"""How often a two-rank gloo run of the DDP test's worker fails (the exit abort the suite saw).

Runs ``tests/test_distributed.py``'s WORKER under ``torch.distributed.run --nproc_per_node=2``
``--runs`` times on its Parquet log, counting non-zero exits and the ones that aborted at exit
("terminate called without an active exception", SIGABRT).

    python benchmarks/ddp_exit_loop.py --runs 24 --out benchmarks/results/ddp_exit_loop.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _env import environment, header_markdown, publish

TESTS = Path(__file__).resolve().parent.parent / "tests"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=24)
    p.add_argument("--out")
    args = p.parse_args()
    sys.path.insert(0, str(TESTS))
    import test_distributed as t  # the worker and its data, exactly as the test launches them

    env = environment()
    failed = aborted = 0
    t0 = time.perf_counter()
    for _ in range(args.runs):
        folder = Path(tempfile.mkdtemp())
        t._write_parquet(folder)
        (folder / "worker.py").write_text(t.WORKER)
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               str(folder / "worker.py"), str(folder), "cpu"], env=t._env(), capture_output=True,
                              text=True, timeout=240)
        failed += proc.returncode != 0
        aborted += "terminate called without an active exception" in proc.stderr
    secs = time.perf_counter() - t0
    row = {"runs": args.runs, "failed": failed, "aborted_at_exit": aborted, "seconds": secs}
    text = "\n".join(["# Two-rank gloo runs of the DDP test's worker", "", header_markdown(env),
                      "| runs | failed | aborted at exit | seconds |", "|---|---|---|---|",
                      f"| {args.runs} | {failed} | {aborted} | {secs:.0f} |"]) + "\n"
    return publish(args.out, text, env, [row])


if __name__ == "__main__":
    raise SystemExit(main())
