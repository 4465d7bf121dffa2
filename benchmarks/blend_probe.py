"""Blend variants on one ML-1M strong split: the weight search's step, and extra members.

Fits the bench's Blend members with their defaults (EDLAE dropout 0.33, MultDAE, MultVAE,
CDAE, RecVAE), plus MultVAE without weight averaging and implicit ALS, on one split of
``recae bench``'s strong protocol, then blends them with ``Blend.from_models`` (weights
chosen on validation) and prints validation and test NDCG@100 as JSON lines. One thread.

    python benchmarks/blend_probe.py --seed 98765
"""

from __future__ import annotations

import argparse
import json
import os

import torch

import recae
from recae.bench.protocols import FIRST_SEED, load_dataset, make_split
from recae.evaluate import evaluate
from recae.models.neural import NeuralRecommender

MEMBERS = {"edlae": lambda: recae.EASE(dropout=0.33), "multdae": recae.MultDAE, "multvae": recae.MultVAE,
           "cdae": recae.CDAE, "recvae": recae.RecVAE, "multvae_raw": lambda: recae.MultVAE(weight_averaging=None),
           "als": recae.ImplicitALS}
BASE = ["edlae", "multdae", "multvae", "cdae", "recvae"]
VARIANTS = [("base", BASE, 0.05), ("base, step 0.025", BASE, 0.025), ("+ MultVAE without averaging", BASE + ["multvae_raw"], 0.05),
            ("+ ALS", BASE + ["als"], 0.05)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECAE_DATA_DIR", "../shared/data"))
    ap.add_argument("--seed", type=int, default=FIRST_SEED)
    args = ap.parse_args()
    torch.set_num_threads(1)
    split = make_split(load_dataset("ml-1m", args.data_dir), "strong", args.seed)

    def ndcg(model, part):
        return round(float(evaluate(model, split, k=100, metrics=("ndcg",), part=part).loc["ndcg@100", "mean"]), 4)

    fitted = {}
    for name, make in MEMBERS.items():
        model = make()
        model.fit(split.train, valid=split) if isinstance(model, NeuralRecommender) else model.fit(split.train)
        fitted[name] = model
        print(json.dumps({"seed": args.seed, "member": name, "valid": ndcg(model, "valid"), "test": ndcg(model, "test")}),
              flush=True)
    for label, names, step in VARIANTS:
        blend = recae.Blend.from_models([fitted[n] for n in names], valid=split, grid_step=step)
        print(json.dumps({"seed": args.seed, "blend": label, "valid": ndcg(blend, "valid"), "test": ndcg(blend, "test"),
                          "weights": [round(float(w), 3) for w in blend.weights_]}), flush=True)


if __name__ == "__main__":
    main()
