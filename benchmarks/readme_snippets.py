"""Run every Python snippet of README.md verbatim, in order, and time each one.

The snippets share one namespace, as a reader pasting them into one session would (the neural
snippet uses the ``split`` of the first one). They run in a fresh folder holding the
``ratings.csv`` the first snippet reads (MovieLens 100K's ``u.data`` written as
``userId,movieId,rating,timestamp``, from ``$RECAE_DATA_DIR``), in a fresh Python process.
``tests/test_readme_snippets.py`` runs this script; the README states each snippet's time
from ``benchmarks/results/readme_snippets.md``.

    python benchmarks/readme_snippets.py --out benchmarks/results/readme_snippets.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# what runs in the child: each snippet compiled under its README line, timed, reported as JSON
CHILD = """
import json, sys, time, traceback
snippets = json.loads(sys.stdin.read())
ns = {"__name__": "__main__"}
for s in snippets:
    t = time.perf_counter()
    try:
        exec(compile(s["code"], f"README.md:{s['line']}", "exec"), ns)
        ok, error = True, None
    except BaseException:
        ok, error = False, traceback.format_exc()
    print(json.dumps({"line": s["line"], "section": s["section"], "ok": ok, "seconds": time.perf_counter() - t, "error": error}), flush=True)
    if not ok:
        break
"""


def snippets(readme: Path = ROOT / "README.md") -> list[dict]:
    """The README's ```python blocks, in order: first code line, the section they stand in, their text."""
    text = readme.read_text()
    found = []
    for m in FENCE.finditer(text):
        heading = re.findall(r"^##+ (.*)$", text[:m.start()], re.M)[-1:] or ["(top)"]
        found.append({"line": text.count("\n", 0, m.start(1)) + 1, "section": heading[0], "code": m.group(1)})
    return found


def write_ratings(folder: Path, data_dir: str) -> None:
    """MovieLens 100K as the ``ratings.csv`` the first snippet reads."""
    import pandas as pd

    u = pd.read_csv(Path(data_dir) / "ml-100k" / "u.data", sep="\t", names=["userId", "movieId", "rating", "timestamp"])
    u.to_csv(folder / "ratings.csv", index=False)


def run(folder: Path, timeout: float) -> list[dict]:
    """Run the snippets in ``folder`` in a child process; one result per snippet that ran."""
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(snippets()), cwd=folder, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"line"')]
    if proc.returncode != 0 and not results:
        raise RuntimeError(f"the snippet runner failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write a Markdown table of the times here")
    p.add_argument("--json", help="write the per-snippet results as JSON here")
    p.add_argument("--timeout", type=float, default=3600.0)
    args = p.parse_args()
    data_dir = os.environ.get("RECAE_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-100k" / "u.data").exists():
        print("needs MovieLens 100K under $RECAE_DATA_DIR/ml-100k", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        write_ratings(Path(tmp), data_dir)
        t = time.perf_counter()
        results = run(Path(tmp), args.timeout)
        total = time.perf_counter() - t
    for r in results:
        print(f"README.md:{r['line']}: {'ok' if r['ok'] else 'FAILED'} in {r['seconds']:.1f} s")
        if r["error"]:
            print(r["error"], file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.out:
        from _env import environment, header_markdown

        env = environment()
        rows = "\n".join(f"| {r['section']} (README.md:{r['line']}) | {'ok' if r['ok'] else 'failed'} | {r['seconds']:.1f} |"
                         for r in results)
        load = os.getloadavg()[0]
        Path(args.out).write_text(
            "# README snippets, run verbatim in order in one fresh process\n\n" + header_markdown(env)
            + f"\nLoad average when it ended: {load:.1f} (2 cores).\n\n"
            + f"| snippet (section, first line) | result | seconds |\n|---|---|---|\n{rows}\n\n"
            f"Total {total:.0f} s, with the child's start and `import recae`.\n")
    ok = len(results) == len(snippets()) and all(r["ok"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
