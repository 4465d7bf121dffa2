"""How often a two-rank gloo run of the DDP test's worker aborts at exit, with and without the fix.

Runs ``tests/test_distributed.py``'s WORKER under ``torch.distributed.run --nproc_per_node=2``
``--runs`` times on its Parquet log, counting non-zero exits and the ones that aborted at exit
("terminate called without an active exception", SIGABRT). With ``--compare`` every run is
paired with one whose ranks leave the way recae did before the fix (a barrier whose work handle
is dropped at once, so a gloo worker thread may release its tensor during the interpreter's
teardown); the two alternate, so both see the same load.

    python benchmarks/ddp_exit_loop.py --runs 100 --compare --out benchmarks/results/ddp_exit_loop.md
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

#: Prepended to the worker for the comparison arm: recae's exit as it was before the fix.
BEFORE = '''
import torch.distributed
import recae.distributed


def _leave_before_fix():
    d = torch.distributed
    if d.is_available() and d.is_initialized():
        d.barrier()  # the work handle is dropped here: the last release may fall to a gloo thread
        d.destroy_process_group()


recae.distributed._leave = _leave_before_fix
'''

ARMS = {"recae (barrier handle held to teardown)": "", "before the fix (handle dropped at once)": BEFORE}


def _run(t, prefix: str) -> tuple[bool, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t._write_parquet(folder)
        (folder / "worker.py").write_text(prefix + t.WORKER)
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               str(folder / "worker.py"), str(folder), "cpu"], env=t._env(), capture_output=True,
                              text=True, timeout=240)
    return proc.returncode != 0, "terminate called without an active exception" in proc.stderr


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=24, help="runs per arm")
    p.add_argument("--compare", action="store_true", help="alternate with runs of the exit before the fix")
    p.add_argument("--out")
    args = p.parse_args()
    sys.path.insert(0, str(TESTS))
    import test_distributed as t  # the worker and its data, exactly as the test launches them

    env = environment()
    arms = list(ARMS.items()) if args.compare else list(ARMS.items())[:1]
    counts = {name: [0, 0] for name, _ in arms}
    t0 = time.perf_counter()
    for _ in range(args.runs):
        for name, prefix in arms:
            failed, aborted = _run(t, prefix)
            counts[name][0] += failed
            counts[name][1] += aborted
    secs = time.perf_counter() - t0
    rows = [{"arm": name, "runs": args.runs, "failed": f, "aborted_at_exit": a} for name, (f, a) in counts.items()]
    text = "\n".join(["# Two-rank gloo runs of the DDP test's worker", "", header_markdown(env),
                      f"- whole run: {secs:.0f} s", "", "| exit | runs | failed | aborted at exit |",
                      "|---|---|---|---|", *(f"| {r['arm']} | {r['runs']} | {r['failed']} | {r['aborted_at_exit']} |"
                                             for r in rows)]) + "\n"
    return publish(args.out, text, env, rows)


if __name__ == "__main__":
    raise SystemExit(main())
