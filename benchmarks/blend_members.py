"""Which low-rank member lifts the Blend: LinearAE settings on the bench's three ML-1M strong splits.

Fits the bench's Blend members with their defaults (EDLAE dropout 0.33, MultDAE, MultVAE, CDAE,
RecVAE) once per split and caches their validation and test scores (``--cache``), then adds a
LinearAE of each (rank, l2) of a grid and runs the Blend's weight search (per-user z-scores,
coordinate ascent from equal weights, step 0.05, as :class:`recae.Blend` does) on the cached
validation scores. Prints validation and test NDCG@100 per split and their means as JSON
lines. The setting is chosen on the mean validation NDCG@100; test is printed for the record.
Also prints each cached model's NDCG@100 alone, and the shared weights that ``Blend()`` uses
without validation data (an exhaustive simplex grid on the mean validation of the splits).
One thread; about 20 minutes per split for the neural members, seconds per LinearAE.

    python benchmarks/blend_members.py --seeds 98765 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

import numpy as np
import scipy.sparse as sp
import torch

import recae
from recae.bench.protocols import load_dataset, make_split
from recae.metrics import ndcg_at_k
from recae.models.blend import _standardize
from recae.models.blend_weights import simplex_grid
from recae.models.validation import scored_rows

BASE = {"edlae": lambda: recae.EASE(dropout=0.33), "multdae": recae.MultDAE, "multvae": recae.MultVAE,
        "cdae": recae.CDAE, "recvae": recae.RecVAE, "ease": recae.EASE}
GRID = [(rank, l2) for rank in (256, 512, 1024) for l2 in (200.0, 500.0, 1000.0, 2000.0)]
#: Blend() without validation data: one weight vector for all splits, for these member sets
DEFAULT_SETS = [["ease", "recvae"], ["ease", "linearae_1024_200", "recvae"]]


def cache_scores(seed: int, split, name: str, model, cache: str) -> None:
    for part in ("valid", "test"):
        fold_in, target = model._coerce_valid((getattr(split, f"{part}_fold_in"), getattr(split, f"{part}_target")))
        rows = scored_rows((fold_in, target))
        if not os.path.exists(f"{cache}/{seed}/{part}_target.npz"):
            sp.save_npz(f"{cache}/{seed}/{part}_fold_in.npz", fold_in[rows].tocsr())
            sp.save_npz(f"{cache}/{seed}/{part}_target.npz", target[rows].tocsr())
        np.save(f"{cache}/{seed}/{name}_{part}.npy", model.score_rows(fold_in[rows]).float().cpu().numpy())


def ndcg(Z, seen, target, w) -> float:
    s = torch.tensordot(torch.as_tensor(w, dtype=Z.dtype), Z, dims=1).masked_fill(seen, -torch.inf)
    return float(np.nanmean(ndcg_at_k(torch.topk(s, 100, dim=1).indices.numpy(), target, 100)))


def search(Z, seen, target, step=0.05):
    """The Blend's coordinate ascent: move ``step`` of weight between pairs while validation improves."""
    n = Z.shape[0]
    w = np.full(n, 1.0 / n)
    best, improved = ndcg(Z, seen, target, w), True
    while improved:
        improved = False
        for i, j in itertools.permutations(range(n), 2):
            if w[j] < step - 1e-12:
                continue
            trial = w.copy()
            trial[i] += step
            trial[j] -= step
            score = ndcg(Z, seen, target, trial)
            if score > best + 1e-9:
                w, best, improved = trial, score, True
    return w, best


def load_part(seed: int, names: list[str], part: str, cache: str):
    fold_in = sp.load_npz(f"{cache}/{seed}/{part}_fold_in.npz")
    target = sp.load_npz(f"{cache}/{seed}/{part}_target.npz").tocsr()
    Z = torch.stack([_standardize(torch.from_numpy(np.load(f"{cache}/{seed}/{n}_{part}.npy"))) for n in names])
    return Z, torch.from_numpy(fold_in.toarray() > 0), target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECAE_DATA_DIR", "../shared/data"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[98765, 1, 2])
    ap.add_argument("--cache", default="benchmarks/.cache/blend_members")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("ml-1m", args.data_dir)
    for seed in args.seeds:
        os.makedirs(f"{args.cache}/{seed}", exist_ok=True)
        split = make_split(data, "strong", seed)
        for name, make in BASE.items():
            if not os.path.exists(f"{args.cache}/{seed}/{name}_test.npy"):
                model = make()
                model.fit(split.train, valid=split) if name != "edlae" else model.fit(split.train)
                cache_scores(seed, split, name, model, args.cache)
        for rank, l2 in GRID:
            name = f"linearae_{rank}_{int(l2)}"
            if not os.path.exists(f"{args.cache}/{seed}/{name}_test.npy"):
                cache_scores(seed, split, name, recae.LinearAE(rank=rank, l2=l2).fit(split.train), args.cache)
    for name in [n for n in BASE] + [f"linearae_{r}_{int(l2)}" for r, l2 in GRID]:
        alone = {part: [ndcg(*load_part(seed, [name], part, args.cache), [1.0]) for seed in args.seeds]
                 for part in ("valid", "test")}
        print(json.dumps({"alone": name, "mean_valid": round(float(np.mean(alone["valid"])), 4),
                          "mean_test": round(float(np.mean(alone["test"])), 4)}), flush=True)
    # the bench's member order: the linear member, the low-rank one, then the neural ones
    variants = [("base", ["edlae", "multdae", "multvae", "cdae", "recvae"])] + [
        (f"+ LinearAE(rank={r}, l2={l2:g})", ["edlae", f"linearae_{r}_{int(l2)}", "multdae", "multvae", "cdae", "recvae"])
        for r, l2 in GRID]
    for label, names in variants:
        valid, test = [], []
        for seed in args.seeds:
            Zv, seen_v, target_v = load_part(seed, names, "valid", args.cache)
            Zt, seen_t, target_t = load_part(seed, names, "test", args.cache)
            w, v = search(Zv, seen_v, target_v)
            valid.append(v)
            test.append(ndcg(Zt, seen_t, target_t, w))
            print(json.dumps({"blend": label, "seed": seed, "valid": round(v, 4), "test": round(test[-1], 4),
                              "weights": np.round(w, 3).tolist()}), flush=True)
        print(json.dumps({"blend": label, "mean_valid": round(float(np.mean(valid)), 5),
                          "mean_test": round(float(np.mean(test)), 5)}), flush=True)
    for names in DEFAULT_SETS:
        parts = [(load_part(seed, names, "valid", args.cache), load_part(seed, names, "test", args.cache))
                 for seed in args.seeds]
        candidates = list(simplex_grid(len(names), 0.05))
        means = [np.mean([ndcg(*v, w) for v, _ in parts]) for w in candidates]
        for label, w in (("best", candidates[int(np.argmax(means))]), ("equal", np.full(len(names), 1 / len(names)))):
            print(json.dumps({"default_weights": names, "which": label, "weights": np.round(w, 3).tolist(),
                              "mean_valid": round(float(np.mean([ndcg(*v, w) for v, _ in parts])), 4),
                              "mean_test": round(float(np.mean([ndcg(*t, w) for _, t in parts])), 4)}), flush=True)


if __name__ == "__main__":
    main()
