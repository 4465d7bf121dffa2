"""The Blend's bagged weight search on ML-1M: one search on all validation users against the mean of the picks on bootstrap resamples.

The bench Blend's six members (EDLAE, LinearAE, MultDAE, Mult-VAE, CDAE, RecVAE at the bench
defaults, ``recae.bench.fitting.fit_model`` with ``spaces.start``) are fitted once per strong
split (seeds 98765, 1, 2; one torch thread) and saved; then ``Blend.from_models(members,
valid=split, bags=B)`` is timed and tested for each B on the same fitted members, so the rows
differ only in how the weights are chosen. ``bags=0`` is the search before bagging (it reproduces
the committed bench Blend).

    python benchmarks/blend_bags.py --data-dir ../shared/data --members-dir /tmp/blend_members \
        --out benchmarks/results/blend_bags_ml1m.md

Members already in ``--members-dir`` (``m_<seed>_<name>.recae``) are reused, not refitted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from _env import environment, header_markdown, publish

import recae
from recae.bench import make_split
from recae.bench.fitting import fit_model
from recae.bench.spaces import start
from recae.datasets import load_movielens
from recae.models import Blend

MEMBERS = ("edlae", "linearae", "multdae", "multvae", "cdae", "recvae")
SEEDS = (98765, 1, 2)
BAGS = (0, 10, 30, 100)


def ml1m(args) -> tuple[Path, dict, recae.Interactions]:
    """One torch thread; the members' folder (made), the run's environment and ML-1M's positives."""
    torch.set_num_threads(1)
    folder = Path(args.members_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = load_movielens("1m", data_dir=args.data_dir, download=False).binarize(3.5).filter(min_user=5)
    return folder, environment(), data


def members_for(seed: int, split, folder: Path, names=MEMBERS) -> list:
    """The members ``names`` at their bench defaults on ``split``: loaded from ``folder``, or fitted and saved there."""
    out = []
    for name in names:
        path = folder / f"m_{seed}_{name}.recae"
        if not path.exists():
            model, secs = fit_model(name, start(name), split)
            model.save(path)
            print(f"seed {seed}: fitted {name} in {secs:.0f} s", flush=True)
        out.append(recae.load(path))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir")
    p.add_argument("--members-dir", required=True)
    p.add_argument("--out")
    args = p.parse_args()
    folder, env, data = ml1m(args)
    rows = []
    for seed in SEEDS:
        split = make_split(data, "strong", seed)
        members = members_for(seed, split, folder)
        for bags in BAGS:
            t = time.perf_counter()
            blend = Blend.from_models(members, valid=split, bags=bags)
            secs = time.perf_counter() - t
            test = recae.evaluate(blend, split, k=100, metrics=("ndcg",)).loc["ndcg@100"]
            rows.append({"seed": seed, "bags": bags, "weights": np.round(blend.weights_, 3).tolist(),
                         "valid": float(blend.valid_score_), "test": float(test["mean"]), "se": float(test["se"]),
                         "search_s": secs})
            print(json.dumps(rows[-1]), flush=True)
    mean = {b: float(np.mean([r["test"] for r in rows if r["bags"] == b])) for b in BAGS}
    lines = ["# The Blend's weight search with and without bagging: ML-1M strong, 3 splits", "", header_markdown(env),
             "Same fitted members per split (the bench Blend's six, at their defaults); only the weight search "
             "differs. `bags 0`: one coordinate ascent on all validation users (the search before bagging; "
             "it reproduces the committed bench Blend); `bags B`: the mean of the picks on B bootstrap "
             "resamples of the validation users (`Blend(bags=B)`, the default is 30). Search seconds on one "
             "thread of a shared 2-core machine (other jobs beside it).", "",
             "| split | bags | weights (EDLAE, LinearAE, MultDAE, MultVAE, CDAE, RecVAE) | valid NDCG@100 | "
             "test NDCG@100 ± se | search s |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['bags']} | {r['weights']} | {r['valid']:.4f} | {r['test']:.4f} ± {r['se']:.4f} | "
              f"{r['search_s']:.1f} |" for r in rows]
    lines += ["", "Mean test NDCG@100 over the splits: " + ", ".join(
        f"bags {b}: {m:.4f} ({m / mean[0]:.4f} ×)" for b, m in mean.items()) + "."]
    publish(args.out, "\n".join(lines) + "\n", env, rows)


if __name__ == "__main__":
    main()
