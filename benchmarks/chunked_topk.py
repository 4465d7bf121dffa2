"""Item-chunked top-k: users/s of this tree's ranking against an earlier commit's, alternated in one run.

A FactorEASE-shaped block (unit-norm random factors, rank 64, 2²⁰ items, 40 seen items per
user, seeded) is ranked top-100 with seen items left out, through ``recae.models.ranking.top_k``
in chunks of 2¹⁸ items, on one torch thread. Each tree runs in its own process, the trees
alternating ``--repeats`` times so that both see the same load; the ids and scores must agree.
``--through-model`` ranks through a fitted model's ``recommend`` instead (``FactorEASE(rank=64)``,
one epoch on ``synthetic(50,000 users, 2²⁰ items, 2²¹ positives, popularity="longtail")``,
seed 0), so that the model's own per-block work (its factors, history, weights) is timed too.

    git archive 0c61378 recae | tar -x -C /tmp/base    # the commit before the change
    python benchmarks/chunked_topk.py --baseline /tmp/base --out benchmarks/results/chunked_topk.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _env import environment, header_markdown, publish

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp, torch
sys.path.insert(0, sys.argv[1])
from recae.models import factor_parts, ranking
torch.set_num_threads(1)
U, I, r = 512, 2**20, 64
X = sp.random(U, I, density=40 / I, format="csr", random_state=0, dtype=np.float32)
X.data[:] = 1
A = torch.nn.functional.normalize(torch.randn(I, r, generator=torch.Generator().manual_seed(0)), dim=1)
H = torch.as_tensor(X @ A.numpy())
fac = lambda a, b: factor_parts.MinusHistory(H[a:b], factor_parts.FactorLayer(A), X[a:b], None)
t = time.perf_counter()
ids, sc = ranking.top_k(None, X, U, 100, None, n_items=I, owner="bench", factored=fac, item_chunk=1 << 18)
print(json.dumps({"users_per_s": U / (time.perf_counter() - t), "ids": int(ids.sum()), "scores": float(sc.sum())}))
"""

CHILD_MODEL = r"""
import json, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from recae.datasets import synthetic
from recae.models.factor_ease import FactorEASE
torch.set_num_threads(1)
data = synthetic(n_users=50_000, n_items=2**20, n_interactions=2**21, popularity="longtail", random_state=0)
model = FactorEASE(rank=64, batch_size=8192, epochs=1, patience=None, random_state=0).fit(data)
users = model.user_ids_[:512]
model.recommend(users[:8], n=100)  # first-call allocations
t = time.perf_counter()
ids, sc = model.recommend(users, n=100)
print(json.dumps({"users_per_s": len(users) / (time.perf_counter() - t), "ids": int(ids.astype(np.int64).sum()),
                  "scores": float(sc.sum())}))
"""


def run(tree: str, child: str = CHILD) -> dict:
    out = subprocess.run([sys.executable, "-c", child, tree], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="a folder holding an earlier commit's recae package")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--through-model", action="store_true", help="rank through a fitted FactorEASE's recommend")
    ap.add_argument("--out")
    args = ap.parse_args()
    env = environment()
    rows = []
    child = CHILD_MODEL if args.through_model else CHILD
    for i in range(args.repeats):
        for name, tree in (("baseline", args.baseline), ("this tree", str(ROOT))):
            rows.append({"repeat": i, "tree": name, **run(tree, child)})
            print(rows[-1], flush=True)
    same = len({(r["ids"], r["scores"]) for r in rows}) == 1
    base = [r["users_per_s"] for r in rows if r["tree"] == "baseline"]
    new = [r["users_per_s"] for r in rows if r["tree"] == "this tree"]
    lines = ["# Item-chunked top-k: this tree against the baseline, alternated in one run", "",
             header_markdown(env),
             ("Through `FactorEASE.recommend` (rank 64, one epoch on a 50,000-user long-tail log): "
              if args.through_model else "")
             + "512 users × 2²⁰ items, rank 64, top-100 with seen items left out, chunks of 2¹⁸ items, one torch "
             "thread, one process per run; the 2-core machine was shared with other jobs, so only the ratio "
             "within a repeat is comparable.", "",
             "| repeat | baseline users/s | this tree users/s | × baseline |", "|---|---|---|---|"]
    for i, (b, n) in enumerate(zip(base, new)):
        lines.append(f"| {i} | {b:.1f} | {n:.1f} | {n / b:.2f} |")
    lines += ["", f"Median ratio **{sorted(n / b for b, n in zip(base, new))[len(base) // 2]:.2f} ×**. "
              f"Ids and scores {'identical in every run' if same else 'DIFFER between runs'}.", ""]
    publish(args.out, "\n".join(lines), env, rows)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
