"""ImplicitBPR's fold-in of held-out users, evaluated with two batch sizes on ML-100K.

A new user's factors come from Adam steps on sampled (own item, random item) pairs. Before,
one random stream was drawn for the whole batch of users, so a user's samples, and the test
NDCG@100, depended on which users shared the call (``evaluate``'s ``batch_size``). Now one
stream is shared by every row and mapped onto each row's own items. ``--src`` runs another
checkout's recae (e.g. a ``git worktree`` of the commit before) for the comparison.

    python benchmarks/bpr_fold_in.py --out benchmarks/results/bpr_fold_in.md
    python benchmarks/bpr_fold_in.py --src /tmp/recae-before
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", help="a recae checkout to import instead of the installed one")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    p.add_argument("--out")
    args = p.parse_args()
    if args.src:  # before anything imports recae (_env reads its version)
        sys.path.insert(0, args.src)
    import torch
    from _env import environment, header_markdown, publish

    import recae
    from recae.datasets import load_movielens

    torch.set_num_threads(1)
    data = load_movielens("100k", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    rows = []
    for seed in args.seeds:
        split = recae.strong_generalization_split(data, n_heldout=0.1, random_state=seed)
        model = recae.ImplicitBPR(num_threads=1).fit(split.train)
        row = {"seed": seed, "recae": recae.__file__}
        for batch in (2048, 7):
            table = recae.evaluate(model, split, k=(100,), metrics=("ndcg",), batch_size=batch)
            row[f"ndcg@100 batch {batch}"] = round(float(table.loc["ndcg@100", "mean"]), 4)
        rows.append(row)
    env = environment()
    lines = ["# ImplicitBPR fold-in: test NDCG@100 by evaluate's batch size (ML-100K, strong)", "",
             header_markdown(env), "", "| split seed | batch 2048 | batch 7 |", "|---|---|---|"]
    lines += [f"| {r['seed']} | {r['ndcg@100 batch 2048']} | {r['ndcg@100 batch 7']} |" for r in rows]
    return publish(args.out, "\n".join(lines) + "\n", env, rows)


if __name__ == "__main__":
    sys.exit(main())
