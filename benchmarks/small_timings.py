"""Two small timings the README and the notes quote: ``import recae`` (vs ``import torch``) and the long-tail generator.

    python benchmarks/small_timings.py      # writes benchmarks/results/small_timings.md
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from _env import environment, header_markdown


def wall(code: str, repeats: int = 5) -> float:
    """Best of ``repeats`` wall times of a fresh interpreter running ``code``."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t)
    return best


def generate(shape: dict) -> tuple[float, float, float]:
    code = ("import resource, time, numpy as np; from recae.datasets import synthetic; t = time.perf_counter(); "
            f"d = synthetic(**{shape!r}, popularity='longtail', random_state=0); s = time.perf_counter() - t; "
            "c = np.bincount(d.matrix.indices, minlength=d.n_items); "
            "print(s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, (c <= 2).mean())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    return tuple(float(x) for x in out)


def main() -> None:
    env = environment()
    lines = ["# Small timings", "", header_markdown(env), "| what | figure |", "|---|---|",
             f"| `import torch`, best of 5 | {wall('import torch'):.2f} s |",
             f"| `import recae`, best of 5 | {wall('import recae'):.2f} s |"]
    for shape in ({"n_users": 100_000, "n_items": 250_000, "n_interactions": 2_000_000},
                  {"n_users": 500_000, "n_items": 2_000_000, "n_interactions": 20_000_000}):
        s, rss, tail = generate(shape)
        lines.append(f"| long-tail log {shape['n_users']:,} × {shape['n_items']:,} × {shape['n_interactions']:,} | "
                     f"{s:.1f} s, peak RSS {rss:.2f} GiB (process), {tail:.0%} of items seen ≤ 2 times |")
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).resolve().parent / "results" / "small_timings.md").write_text(text)


if __name__ == "__main__":
    main()
