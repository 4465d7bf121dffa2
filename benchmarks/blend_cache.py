"""Member scores of committed tune searches, saved for offline Blend studies (not a result).

Refits the Blend members of each committed tune report (as ``tune_blend_mf.py`` does) and saves
every member's raw scores for the split's validation and test users, with their fold-in and
target rows, to ``<cache>/<dataset>_<seed>.npz``.

    python benchmarks/blend_cache.py --dataset ml-1m --stem tune_ml-1m_20m_threads2_group --threads 2 --cache /tmp/bc
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from recae.bench import load_dataset, make_split
from recae.bench.fitting import fit_model, valid_ndcg
from recae.models.validation import scored_rows
from tune_blend_mf import RESULTS, refit


def add_extra(path: Path, names, board: dict, split, seed: int) -> None:
    z = np.load(path)
    out = {k: z[k] for k in z.files}
    for name in names:
        if name in board:
            model = refit(board[name], split)
        else:
            model, _ = fit_model(name, {}, split)
        print(json.dumps({"seed": seed, "model": name, "recorded": board.get(name, {}).get("valid_ndcg@100"),
                          "refit": valid_ndcg(model, split)}), flush=True)
        for part in ("valid", "test"):
            X = sp.csr_matrix(out[f"{part}_X"].astype(np.float32))
            out[f"extra_{name}_{part}_S"] = np.asarray(model.score_rows(X), dtype=np.float32)
    save(path, out)


def save(path: Path, arrays: dict) -> None:
    """Written beside and renamed, so a study reading the cache never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--stem", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default="/tmp/bc")
    p.add_argument("--extra", nargs="*", default=[],
                   help="models to add to an existing cache file: the report's best trial, or the model's "
                        "defaults (early-stopped on validation as a trial) where the report did not search it")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    for seed in args.seeds:
        report = json.loads((RESULTS / f"{args.stem}_seed{seed}.json").read_text())
        chosen = report["chosen"]["params"]
        members = chosen["members"]
        board = {r["model"]: r for r in report["leaderboard"]}
        split = make_split(data, "strong", seed)
        path = Path(args.cache) / f"{args.dataset}_{seed}.npz"
        if args.extra:
            add_extra(path, args.extra, board, split, seed)
            continue
        out = {"members": np.array(members), "weights": np.array(chosen["weights"])}
        for part in ("valid", "test"):
            X = getattr(split, f"{part}_fold_in").matrix.tocsr()
            T = getattr(split, f"{part}_target").matrix.tocsr()
            rows = scored_rows((X, T))
            out[f"{part}_X"] = X[rows].toarray().astype(np.int8)
            out[f"{part}_T"] = T[rows].toarray().astype(np.int8)
        scores = {"valid": [], "test": []}
        for m in members:
            model = refit(board[m], split)
            print(json.dumps({"seed": seed, "model": m, "recorded": board[m]["valid_ndcg@100"],
                              "refit": valid_ndcg(model, split)}), flush=True)
            for part in scores:
                X = sp.csr_matrix(out[f"{part}_X"].astype(np.float32))
                scores[part].append(np.asarray(model.score_rows(X), dtype=np.float32))
        for part in scores:
            out[f"{part}_S"] = np.stack(scores[part])
        save(path, out)


if __name__ == "__main__":
    main()
